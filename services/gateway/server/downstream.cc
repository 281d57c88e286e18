#include "downstream.h"

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"

namespace llmesh::gateway {

std::unique_ptr<grpc::ClientContext> DownstreamContext(absl::Time deadline, const std::string& request_id) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(deadline));
  ctx->AddMetadata(rpc::kRequestIdKey, request_id);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> DownstreamContext(grpc::CallbackServerContext* parent, absl::Duration cap,
                                                       const std::string& request_id) {
  // FromCallbackServerContext propagates the deadline and cancellation.
  auto ctx = grpc::ClientContext::FromCallbackServerContext(*parent);
  auto capped = absl::ToChronoTime(absl::Now() + cap);
  if (parent->deadline() > capped) ctx->set_deadline(capped);
  ctx->AddMetadata(rpc::kRequestIdKey, request_id);
  return ctx;
}

absl::Status DownstreamError(const grpc::Status& status, const std::string& what) {
  absl::Status s = rpc::FromGrpcStatus(status);
  if (absl::IsUnavailable(s) || absl::IsUnknown(s))
    return absl::UnavailableError(absl::StrCat(what, " unavailable: ", s.message()));
  return s;
}

}  // namespace llmesh::gateway
