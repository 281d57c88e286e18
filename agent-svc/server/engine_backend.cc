#include "engine_backend.h"

#include "absl/strings/str_cat.h"
#include "downstream_call.h"
#include "llmesh/rpc/channel.h"

namespace llmesh::agent {

EngineBackend::EngineBackend(const std::vector<std::string>& engine_targets, const std::string& tokenizer_target)
    : tokenizer_(v1::TokenizerService::NewStub(rpc::CreateChannel(tokenizer_target))),
      tokenizer_target_(tokenizer_target) {
  for (const auto& t : engine_targets) engines_.push_back({t, v1::EngineService::NewStub(rpc::CreateChannel(t))});
}

absl::StatusOr<Generation> EngineBackend::Generate(const GenerationRequest& request, const CallOptions& opts) {
  const std::string tokenizer_name = absl::StrCat("tokenizer ", tokenizer_target_);
  v1::ApplyChatTemplateRequest tmpl;
  tmpl.set_model(request.model);
  for (const auto& m : request.messages) *tmpl.add_messages() = m;
  tmpl.set_add_generation_prompt(true);
  tmpl.set_allow_fallback(true);
  tmpl.set_tokenize(true);
  v1::ApplyChatTemplateResponse prompt;
  {
    DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
    grpc::Status s = tokenizer_->ApplyChatTemplate(call.ctx(), tmpl, &prompt);
    if (!s.ok()) return FromDownstream(tokenizer_name, s);
  }

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
  std::string who;
  for (size_t attempt = 0; attempt < engines_.size(); ++attempt) {
    Engine& engine = engines_[next_.fetch_add(1) % engines_.size()];
    who = absl::StrCat("engine ", engine.target);
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
  if (!status.ok()) return FromDownstream(who, status);
  if (out.completion_tokens == 0) out.completion_tokens = static_cast<int32_t>(ids.size());
  if (out.prompt_tokens == 0) out.prompt_tokens = prompt.token_ids_size();

  v1::DetokenizeRequest detok;
  detok.set_model(request.model);
  detok.mutable_token_ids()->Assign(ids.begin(), ids.end());
  detok.set_skip_special(true);
  v1::DetokenizeResponse text;
  DownstreamCall call(opts.deadline, opts.cancel, opts.request_id);
  grpc::Status s = tokenizer_->Detokenize(call.ctx(), detok, &text);
  if (!s.ok()) return FromDownstream(tokenizer_name, s);
  out.text = text.text();
  return out;
}

}  // namespace llmesh::agent
