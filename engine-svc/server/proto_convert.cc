#include "proto_convert.h"

namespace llmesh::engine {

SamplingConfig ToSamplingConfig(const v1::SamplingParams& p, int32_t top_logprobs) {
  SamplingConfig c;
  if (p.has_temperature()) c.temperature = p.temperature();
  if (p.has_top_k()) c.top_k = p.top_k();
  if (p.has_top_p()) c.top_p = p.top_p();
  if (p.has_min_p()) c.min_p = p.min_p();
  if (p.has_typical_p()) c.typical_p = p.typical_p();
  if (p.has_repetition_penalty()) c.repetition_penalty = p.repetition_penalty();
  if (p.has_frequency_penalty()) c.frequency_penalty = p.frequency_penalty();
  if (p.has_presence_penalty()) c.presence_penalty = p.presence_penalty();
  if (p.has_penalty_last_n()) c.penalty_last_n = p.penalty_last_n();
  for (const auto& [id, bias] : p.logit_bias()) c.logit_bias[id] = bias;
  if (p.has_mirostat()) c.mirostat = p.mirostat();
  if (p.has_mirostat_tau()) c.mirostat_tau = p.mirostat_tau();
  if (p.has_mirostat_eta()) c.mirostat_eta = p.mirostat_eta();
  if (p.has_seed()) c.seed = p.seed();
  c.grammar = p.grammar();
  c.json_schema = p.json_schema();
  c.n_top_logprobs = top_logprobs;
  return c;
}

v1::FinishReason ToProto(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return v1::FINISH_REASON_UNSPECIFIED;
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kError: return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void SetFinish(FinishReason reason, const GenerationUsage& u, v1::GenerateResponse* out) {
  out->set_finish_reason(ToProto(reason));
  auto* usage = out->mutable_usage();
  usage->set_prompt_tokens(u.prompt_tokens);
  usage->set_completion_tokens(u.completion_tokens);
  usage->set_total_tokens(u.prompt_tokens + u.completion_tokens);
  usage->set_cached_prompt_tokens(u.cached_prompt_tokens);
  auto* timing = out->mutable_timing();
  timing->set_queue_ms(u.queue_ms);
  timing->set_ttft_ms(u.ttft_ms);
  timing->set_prefill_ms(u.prefill_ms);
  timing->set_decode_ms(u.decode_ms);
}

void ToProto(const SampleResult& r, bool logprobs, const tokenizer::Tokenizer& tok, v1::GeneratedToken* out) {
  out->set_token_id(r.token);
  if (logprobs) out->set_logprob(r.logprob);
  for (const auto& alt : r.top_logprobs) {
    auto* t = out->add_top_logprobs();
    t->set_token_id(alt.token);
    t->set_logprob(alt.logprob);
    t->set_piece(tok.TokenToPiece(alt.token, true));
  }
}

void ToProto(const LoadedModelInfo& info, v1::ModelInfo* out) {
  out->set_name(info.name);
  out->set_architecture(info.architecture);
  out->set_n_params(info.n_params);
  out->set_size_bytes(info.size_bytes);
  out->set_n_ctx(info.n_ctx);
  out->set_n_vocab(info.n_vocab);
  out->set_n_embd(info.n_embd);
  out->set_loaded(info.loaded);
  out->set_weight_type(info.weight_type);
}

Pooling ToPooling(v1::Pooling p) {
  switch (p) {
    case v1::POOLING_MEAN: return Pooling::kMean;
    case v1::POOLING_LAST: return Pooling::kLast;
    case v1::POOLING_CLS: return Pooling::kCls;
    default: return Pooling::kDefault;  // the model's own (bert pooling_type, else mean)
  }
}

}  // namespace llmesh::engine
