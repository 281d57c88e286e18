// Embeddings through an engine worker: least-loaded routing, one retry on
// another worker when the first is unavailable. Callback style; used by the
// gRPC Embed RPC and the HTTP /v1/embeddings route.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "generation.h"

namespace llmesh::gateway {

struct EmbedJob {
  std::string model;
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> token_inputs;
  v1::Pooling pooling = v1::POOLING_UNSPECIFIED;
};

void RunEmbed(GatewayContext& gw, EmbedJob job, std::string request_id, absl::Time deadline,
              std::function<void(absl::StatusOr<v1::GatewayEmbedResponse>)> done);

// Gateway ListModels answer from the worker pool.
v1::GatewayListModelsResponse ListModelsOf(WorkerPool& pool);

}  // namespace llmesh::gateway
