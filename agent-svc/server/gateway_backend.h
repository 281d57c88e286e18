// LlmBackend over the gateway's Chat: the gateway renders the chat template,
// routes across its engine workers (least work, prefix affinity) and
// detokenizes. For stacks where the agent should share the gateway's
// admission and routing rather than address engines itself. `api_key`, when
// set, is sent as "authorization: Bearer KEY".
#pragma once

#include <memory>
#include <string>

#include "llmesh/agent/llm_backend.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::agent {

class GatewayBackend : public LlmBackend {
 public:
  GatewayBackend(const std::string& target, std::string api_key);
  absl::StatusOr<Generation> Generate(const GenerationRequest& request, const CallOptions& opts) override;

 private:
  std::string target_;
  std::string api_key_;
  std::unique_ptr<v1::Gateway::Stub> stub_;
};

}  // namespace llmesh::agent
