#include "generate_request.h"

#include "proto_convert.h"

namespace llmesh::engine {

absl::StatusOr<PreparedGeneration> PrepareGeneration(const Engine& engine, const v1::GenerateRequest& req,
                                                     const std::string& fallback_request_id) {
  auto lm = engine.Get(req.model());
  if (!lm.ok()) return lm.status();
  if (auto st = (*lm)->CheckGenerative(); !st.ok()) return st;
  PreparedGeneration out;
  out.model = *lm;
  GenerationRequest& g = out.request;
  if (!req.prompt_token_ids().empty() && !req.prompt_text().empty())
    return absl::InvalidArgumentError("give prompt_token_ids or prompt_text, not both");
  if (!req.prompt_text().empty()) {
    auto ids = out.model->tokenizer->Encode(req.prompt_text(), /*add_special=*/true, /*parse_special=*/false);
    if (!ids.ok()) return ids.status();
    g.prompt = std::move(*ids);
  } else {
    g.prompt.assign(req.prompt_token_ids().begin(), req.prompt_token_ids().end());
  }
  if (req.top_logprobs() < 0 || req.top_logprobs() > 20)
    return absl::InvalidArgumentError("top_logprobs must be in 0..20");
  g.sampling = ToSamplingConfig(req.sampling(), req.top_logprobs());
  g.max_tokens = req.stopping().max_tokens();
  g.stop_token_ids.assign(req.stopping().stop_token_ids().begin(), req.stopping().stop_token_ids().end());
  g.ignore_eos = req.stopping().ignore_eos();
  g.reject_overflow = req.overflow() == v1::OVERFLOW_POLICY_REJECT;
  g.n = req.n() == 0 ? 1 : req.n();
  g.request_id = req.request_id().empty() ? fallback_request_id : req.request_id();
  return out;
}

}  // namespace llmesh::engine
