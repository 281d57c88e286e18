#include "gateway_backend.h"

#include "absl/strings/str_cat.h"
#include "downstream_call.h"
#include "llmesh/rpc/channel.h"

namespace llmesh::agent {

GatewayBackend::GatewayBackend(const std::string& target, std::string api_key)
    : target_(target), api_key_(std::move(api_key)), stub_(v1::Gateway::NewStub(rpc::CreateChannel(target))) {}

absl::StatusOr<Generation> GatewayBackend::Generate(const GenerationRequest& request, const CallOptions& opts) {
  v1::ChatRequest chat;
  chat.set_model(request.model);
  for (const auto& m : request.messages) *chat.add_messages() = m;
  *chat.mutable_sampling() = request.sampling;
  chat.mutable_stopping()->set_max_tokens(request.max_tokens);

  DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
  if (!api_key_.empty()) call.ctx()->AddMetadata("authorization", absl::StrCat("Bearer ", api_key_));
  auto reader = stub_->Chat(call.ctx(), chat);
  Generation out;
  v1::GatewayGenerateResponse resp;
  while (reader->Read(&resp)) {
    out.text += resp.text_delta();
    if (resp.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      out.finish_reason = resp.finish_reason();
      out.prompt_tokens = resp.usage().prompt_tokens();
      out.completion_tokens = resp.usage().completion_tokens();
      out.cached_prompt_tokens = resp.usage().cached_prompt_tokens();
    }
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return FromDownstream(absl::StrCat("gateway ", target_), s);
  return out;
}

}  // namespace llmesh::agent
