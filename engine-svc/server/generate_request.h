// A GenerateRequest checked and turned into the scheduler's GenerationRequest,
// the same way for Generate and GenerateMux.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "llmesh/engine/engine.h"
#include "llmesh/v1/engine.pb.h"

namespace llmesh::engine {

struct PreparedGeneration {
  std::shared_ptr<LoadedModel> model;  // keeps the scheduler and tokenizer alive
  GenerationRequest request;
};

// NOT_FOUND for an unknown model, FAILED_PRECONDITION for an embedding-only
// one, INVALID_ARGUMENT for a bad prompt or top_logprobs. `fallback_request_id`
// names the request in logs when it carries no request_id of its own.
absl::StatusOr<PreparedGeneration> PrepareGeneration(const Engine& engine, const v1::GenerateRequest& req,
                                                     const std::string& fallback_request_id);

}  // namespace llmesh::engine
