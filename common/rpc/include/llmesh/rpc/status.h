// absl::Status <-> grpc::Status, done once at the service edge. Libraries
// return absl::Status; servers convert on the way out, clients on the way in.
#pragma once

#include <cstdint>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace llmesh::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// The code an integer from a message names (a status carried in a field, as
// GenerateMux events carry theirs): UNKNOWN unless it is a canonical code,
// 0..16. grpc::StatusCode has no fixed underlying type, so a cast of, say, 99
// is undefined behaviour; such integers become codes only through here.
grpc::StatusCode GrpcCodeFromInt(int64_t code);

}  // namespace llmesh::rpc
