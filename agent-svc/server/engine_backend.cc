#include "engine_backend.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "downstream_call.h"
#include "llmesh/rpc/channel.h"

namespace llmesh::agent {

EngineBackend::EngineBackend(const std::vector<std::string>& engine_targets, const std::string& tokenizer_target)
    : tokenizer_(v1::TokenizerService::NewStub(rpc::CreateChannel(tokenizer_target))),
      tokenizer_target_(tokenizer_target) {
  for (const auto& t : engine_targets) engines_.push_back({t, v1::EngineService::NewStub(rpc::CreateChannel(t))});
}

absl::StatusOr<v1::ApplyChatTemplateResponse> EngineBackend::Render(const std::string& model,
                                                                    const std::vector<v1::ChatMessage>& messages,
                                                                    const CallOptions& opts) {
  v1::ApplyChatTemplateRequest tmpl;
  tmpl.set_model(model);
  for (const auto& m : messages) *tmpl.add_messages() = m;
  tmpl.set_add_generation_prompt(true);
  tmpl.set_allow_fallback(true);
  tmpl.set_tokenize(true);
  v1::ApplyChatTemplateResponse prompt;
  DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
  grpc::Status s = tokenizer_->ApplyChatTemplate(call.ctx(), tmpl, &prompt);
  if (!s.ok()) return FromDownstream("tokenizer", tokenizer_target_, s);
  return prompt;
}

absl::StatusOr<int32_t> EngineBackend::CountPromptTokens(const std::string& model,
                                                         const std::vector<v1::ChatMessage>& messages,
                                                         const CallOptions& opts) {
  auto prompt = Render(model, messages, opts);
  if (!prompt.ok()) return prompt.status();
  return prompt->token_ids_size();
}

absl::StatusOr<int32_t> EngineBackend::ContextLength(const std::string& model, const CallOptions& opts) {
  int32_t n_ctx = 0;
  absl::Status last = absl::NotFoundError(absl::StrCat("model '", model, "' is not loaded on any engine"));
  for (const auto& engine : engines_) {
    DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
    v1::ListModelsResponse resp;
    grpc::Status s = engine.stub->ListModels(call.ctx(), v1::ListModelsRequest(), &resp);
    if (!s.ok()) {
      last = FromDownstream("engine", engine.target, s);
      continue;
    }
    for (const auto& m : resp.models())
      if (m.name() == model && m.n_ctx() > 0) n_ctx = n_ctx == 0 ? m.n_ctx() : std::min(n_ctx, m.n_ctx());
  }
  if (n_ctx == 0) return last;
  return n_ctx;
}

absl::StatusOr<Generation> EngineBackend::Generate(const GenerationRequest& request, const CallOptions& opts) {
  auto rendered = Render(request.model, request.messages, opts);
  if (!rendered.ok()) return rendered.status();
  const v1::ApplyChatTemplateResponse& prompt = *rendered;

  v1::GenerateRequest gen;
  gen.set_model(request.model);
  gen.mutable_prompt_token_ids()->Assign(prompt.token_ids().begin(), prompt.token_ids().end());
  *gen.mutable_sampling() = request.sampling;
  gen.mutable_stopping()->set_max_tokens(request.max_tokens);
  gen.set_overflow(v1::OVERFLOW_POLICY_TRUNCATE_OUTPUT);
  gen.set_request_id(opts.request_id);

  Generation out;
  std::vector<int32_t> ids;
  grpc::Status status;
  std::string who;  // the engine that answered last
  for (size_t attempt = 0; attempt < engines_.size(); ++attempt) {
    Engine& engine = engines_[next_.fetch_add(1) % engines_.size()];
    who = engine.target;
    DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
    auto reader = engine.stub->Generate(call.ctx(), gen);
    v1::GenerateResponse resp;
    bool answered = false;
    while (reader->Read(&resp)) {
      answered = true;
      for (const auto& t : resp.tokens()) ids.push_back(t.token_id());
      if (resp.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
        out.finish_reason = resp.finish_reason();
        out.prompt_tokens = resp.usage().prompt_tokens();
        out.completion_tokens = resp.usage().completion_tokens();
        out.cached_prompt_tokens = resp.usage().cached_prompt_tokens();
      }
    }
    status = reader->Finish();
    if (status.ok() || answered || status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
  }
  if (!status.ok()) return FromDownstream("engine", who, status);
  if (out.completion_tokens == 0) out.completion_tokens = static_cast<int32_t>(ids.size());
  if (out.prompt_tokens == 0) out.prompt_tokens = prompt.token_ids_size();

  v1::DetokenizeRequest detok;
  detok.set_model(request.model);
  detok.mutable_token_ids()->Assign(ids.begin(), ids.end());
  detok.set_skip_special(true);
  v1::DetokenizeResponse text;
  DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
  grpc::Status s = tokenizer_->Detokenize(call.ctx(), detok, &text);
  if (!s.ok()) return FromDownstream("tokenizer", tokenizer_target_, s);
  out.text = text.text();
  return out;
}

}  // namespace llmesh::agent
