// LlmBackend over the services directly: tokenizer-svc ApplyChatTemplate
// (tokenize=true, ChatML fallback for models without a template) renders the
// prompt, an engine-svc worker generates under the json_schema grammar, and
// tokenizer-svc Detokenize gives the text. Several engine targets are used
// round-robin; a worker that is UNAVAILABLE before answering is skipped for
// the next (nothing has been streamed to the agent yet, so a retry is safe).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "llmesh/agent/llm_backend.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"

namespace llmesh::agent {

class EngineBackend : public LlmBackend {
 public:
  EngineBackend(const std::vector<std::string>& engine_targets, const std::string& tokenizer_target);
  absl::StatusOr<Generation> Generate(const GenerationRequest& request, const CallOptions& opts) override;
  // The smallest context among the engines that have the model loaded.
  absl::StatusOr<int32_t> ContextLength(const std::string& model, const CallOptions& opts) override;
  // Exact: the tokenizer renders the template, as Generate does.
  absl::StatusOr<int32_t> CountPromptTokens(const std::string& model, const std::vector<v1::ChatMessage>& messages,
                                            const CallOptions& opts) override;

 private:
  absl::StatusOr<v1::ApplyChatTemplateResponse> Render(const std::string& model,
                                                       const std::vector<v1::ChatMessage>& messages,
                                                       const CallOptions& opts);

  struct Engine {
    std::string target;
    std::unique_ptr<v1::EngineService::Stub> stub;
  };
  std::vector<Engine> engines_;
  std::unique_ptr<v1::TokenizerService::Stub> tokenizer_;
  std::string tokenizer_target_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace llmesh::agent
