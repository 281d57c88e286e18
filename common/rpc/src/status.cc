#include "llmesh/rpc/status.h"

namespace llmesh::rpc {

// Both enums are the canonical Google error space with identical numbering
// (0..16); the casts are the documented way to convert between them.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// grpc::StatusCode's values go beyond 0..16 (DO_NOT_USE is -1, and an enum
// without a fixed type holds every value of its bit width, here -32..31):
// those are no canonical code.
absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = status.error_code();
  if (code < 0 || code > 16) code = static_cast<int>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

grpc::StatusCode GrpcCodeFromInt(int64_t code) {
  if (code < 0 || code > 16) return grpc::StatusCode::UNKNOWN;
  return static_cast<grpc::StatusCode>(code);
}

}  // namespace llmesh::rpc
