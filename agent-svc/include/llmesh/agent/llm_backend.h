// The agent loop's only view of a language model: chat messages in, one
// (possibly grammar-constrained) completion out. The server implements it
// over gRPC (engine-svc + tokenizer-svc, or the gateway); tests script it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "llmesh/agent/cancellation.h"
#include "llmesh/v1/common.pb.h"

namespace llmesh::agent {

struct GenerationRequest {
  std::string model;
  // Rendered by the backend with the model's chat template (falling back to
  // ChatML for models without one), ending with an open assistant turn.
  // Roles are only "system", "user" and "assistant".
  std::vector<v1::ChatMessage> messages;
  // The caller's sampling parameters, with json_schema set by the loop: the
  // backend must honour it (the engine's grammar-constrained sampling).
  v1::SamplingParams sampling;
  int32_t max_tokens = 0;  // > 0
};

struct Generation {
  std::string text;
  // STOP when the model ended the text (the grammar completed), LENGTH when
  // max_tokens or the context window cut it.
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_prompt_tokens = 0;
};

struct CallOptions {
  absl::Time deadline = absl::InfiniteFuture();
  const Cancellation* cancel = nullptr;  // never null when the loop calls
  std::string request_id;
};

class LlmBackend {
 public:
  virtual ~LlmBackend() = default;
  // Errors as the downstream reported them (UNAVAILABLE, NOT_FOUND for an
  // unknown model, INVALID_ARGUMENT for bad sampling, DEADLINE_EXCEEDED,
  // CANCELLED when opts.cancel fired).
  virtual absl::StatusOr<Generation> Generate(const GenerationRequest& request, const CallOptions& opts) = 0;
  // The model's context window in tokens: prompt and completion together.
  virtual absl::StatusOr<int32_t> ContextLength(const std::string& model, const CallOptions& opts) = 0;
  // Tokens of the prompt `messages` render to for `model`, the open assistant
  // turn included: exact where the backend renders it itself, else an upper
  // estimate that its generations' usage keeps honest.
  virtual absl::StatusOr<int32_t> CountPromptTokens(const std::string& model,
                                                    const std::vector<v1::ChatMessage>& messages,
                                                    const CallOptions& opts) = 0;
};

}  // namespace llmesh::agent
