// What a generation request asks for and what it gets back, independent of
// gRPC: the scheduler's input and output types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmesh/engine/batch.h"
#include "llmesh/engine/sampler.h"

namespace llmesh::engine {

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* FinishReasonName(FinishReason r);

struct GenerationRequest {
  std::vector<TokenId> prompt;
  SamplingConfig sampling;            // includes n_top_logprobs and the seed
  int32_t max_tokens = 0;             // 0: until the context is full
  std::vector<TokenId> stop_token_ids;
  bool ignore_eos = false;
  // Reject up front when prompt + max_tokens exceed the context, instead of
  // stopping with kLength when it fills.
  bool reject_overflow = false;
  int32_t n = 1;                      // completions of the same prompt, 1..16
  std::string request_id;             // for logs
};

// Per completion, reported with its finish.
struct GenerationUsage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_prompt_tokens = 0;   // served from the prefix cache
  double queue_ms = 0;                // submit -> first scheduled step
  double ttft_ms = 0;                 // submit -> first token
  double prefill_ms = 0;              // first step -> first token
  double decode_ms = 0;               // first token -> finish
};

// Receives a request's tokens. Called on the scheduler thread: must return
// quickly and never block on the network (buffer and hand off instead).
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  virtual void OnToken(int32_t index, const SampleResult& token) = 0;
  // Exactly once per completion index, after its last OnToken. `error` is set
  // for kError.
  virtual void OnFinish(int32_t index, FinishReason reason, const GenerationUsage& usage,
                        const std::string& error) = 0;
};

}  // namespace llmesh::engine
