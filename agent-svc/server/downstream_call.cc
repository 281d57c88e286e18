#include "downstream_call.h"

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/scrub.h"
#include "llmesh/rpc/status.h"
#include "spdlog/spdlog.h"

namespace llmesh::agent {

DownstreamCall::DownstreamCall(absl::Time deadline, const Cancellation* cancel, const std::string& request_id)
    : ctx_(std::make_unique<grpc::ClientContext>()) {
  if (deadline != absl::InfiniteFuture()) ctx_->set_deadline(absl::ToChronoTime(deadline));
  if (!request_id.empty()) ctx_->AddMetadata(rpc::kRequestIdKey, request_id);
  if (cancel) {
    grpc::ClientContext* raw = ctx_.get();
    registration_ = cancel->OnCancel([raw] { raw->TryCancel(); });
  }
}

absl::Status FromDownstream(const std::string& who, const std::string& target, const grpc::Status& status) {
  absl::Status st = rpc::FromGrpcStatus(status);
  spdlog::debug("event=downstream_failed who=\"{}\" target={} code={} error=\"{}\"", who, target,
                absl::StatusCodeToString(st.code()), std::string(st.message()));
  return absl::Status(st.code(), absl::StrCat(who, ": ", rpc::ScrubAddresses(st.message())));
}

}  // namespace llmesh::agent
