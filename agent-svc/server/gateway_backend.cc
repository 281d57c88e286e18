#include "gateway_backend.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "downstream_call.h"
#include "llmesh/rpc/channel.h"

namespace llmesh::agent {

GatewayBackend::GatewayBackend(const std::string& target, std::string api_key)
    : target_(target), api_key_(std::move(api_key)), stub_(v1::Gateway::NewStub(rpc::CreateChannel(target))) {}

void GatewayBackend::Prepare(grpc::ClientContext* ctx) const {
  if (!api_key_.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", api_key_));
}

absl::StatusOr<Generation> GatewayBackend::Generate(const GenerationRequest& request, const CallOptions& opts) {
  v1::ChatRequest chat;
  chat.set_model(request.model);
  for (const auto& m : request.messages) *chat.add_messages() = m;
  *chat.mutable_sampling() = request.sampling;
  chat.mutable_stopping()->set_max_tokens(request.max_tokens);

  Generation out;
  {
    DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
    Prepare(call.ctx());
    auto reader = stub_->Chat(call.ctx(), chat);
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
    if (!s.ok()) return FromDownstream("gateway", target_, s);
  }
  // What the template added to this prompt, per message (an estimate only
  // errs high once the largest share seen is kept).
  if (out.prompt_tokens > 0) {
    if (auto content = ContentTokens(request.model, request.messages, opts); content.ok()) {
      const int32_t frames = static_cast<int32_t>(request.messages.size()) + 1;
      const int32_t per_frame = std::max(0, (out.prompt_tokens - *content + frames - 1) / frames);
      std::lock_guard lock(mu_);
      template_tokens_ = measured_ ? std::max(template_tokens_, per_frame) : per_frame;
      measured_ = true;
    }
  }
  return out;
}

absl::StatusOr<int32_t> GatewayBackend::ContextLength(const std::string& model, const CallOptions& opts) {
  DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
  Prepare(call.ctx());
  v1::GatewayListModelsResponse resp;
  grpc::Status s = stub_->ListModels(call.ctx(), v1::GatewayListModelsRequest(), &resp);
  if (!s.ok()) return FromDownstream("gateway", target_, s);
  for (const auto& m : resp.models())
    if (m.name() == model && m.info().n_ctx() > 0) return m.info().n_ctx();
  return absl::NotFoundError(absl::StrCat("model '", model, "' is not served by any engine worker"));
}

absl::StatusOr<int32_t> GatewayBackend::ContentTokens(const std::string& model,
                                                      const std::vector<v1::ChatMessage>& messages,
                                                      const CallOptions& opts) {
  v1::TokenizeRequest req;
  req.set_model(model);
  for (const auto& m : messages) absl::StrAppend(req.mutable_text(), m.content(), "\n");
  DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
  Prepare(call.ctx());
  v1::TokenizeResponse resp;
  grpc::Status s = stub_->Tokenize(call.ctx(), req, &resp);
  if (!s.ok()) return FromDownstream("gateway", target_, s);
  return resp.token_ids_size();
}

absl::StatusOr<int32_t> GatewayBackend::CountPromptTokens(const std::string& model,
                                                          const std::vector<v1::ChatMessage>& messages,
                                                          const CallOptions& opts) {
  auto content = ContentTokens(model, messages, opts);
  if (!content.ok()) return content.status();
  std::lock_guard lock(mu_);
  return *content + template_tokens_ * (static_cast<int32_t>(messages.size()) + 1);
}

}  // namespace llmesh::agent
