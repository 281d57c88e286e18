// LlmBackend over the gateway's Chat: the gateway renders the chat template,
// routes across its engine workers (least work, prefix affinity) and
// detokenizes. For stacks where the agent should share the gateway's
// admission and routing rather than address engines itself. `api_key`, when
// set, is sent as "authorization: Bearer KEY".
//
// The gateway does not render templates for clients, so a prompt's size is
// its messages' tokens (the gateway's Tokenize) plus what the template adds
// per message, measured from each generation's usage.prompt_tokens.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "llmesh/agent/llm_backend.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::agent {

class GatewayBackend : public LlmBackend {
 public:
  GatewayBackend(const std::string& target, std::string api_key);
  absl::StatusOr<Generation> Generate(const GenerationRequest& request, const CallOptions& opts) override;
  absl::StatusOr<int32_t> ContextLength(const std::string& model, const CallOptions& opts) override;
  absl::StatusOr<int32_t> CountPromptTokens(const std::string& model, const std::vector<v1::ChatMessage>& messages,
                                            const CallOptions& opts) override;

 private:
  // Template tokens per message until a generation has measured them.
  static constexpr int32_t kUnmeasuredTemplateTokens = 16;

  void Prepare(grpc::ClientContext* ctx) const;
  absl::StatusOr<int32_t> ContentTokens(const std::string& model, const std::vector<v1::ChatMessage>& messages,
                                        const CallOptions& opts);

  std::string target_;
  std::string api_key_;
  std::unique_ptr<v1::Gateway::Stub> stub_;
  std::mutex mu_;
  int32_t template_tokens_ = kUnmeasuredTemplateTokens;  // per message, the open assistant turn counted as one
  bool measured_ = false;
};

}  // namespace llmesh::agent
