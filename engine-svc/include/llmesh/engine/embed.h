// Sentence embeddings from a decoder model: the last hidden state after the
// final norm, pooled over the tokens (mean or last), L2-normalised.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/engine/batch.h"
#include "llmesh/engine/forward.h"
#include "llmesh/engine/pooling.h"

namespace llmesh::engine {

// Runs `tokens` as a fresh sequence `seq` through `ctx` (the sequence is
// removed from `kv` afterwards) and returns an (n_embd) unit vector.
// kDefault pools as kMean; kCls is an encoder's pooling (INVALID_ARGUMENT).
absl::StatusOr<std::vector<float>> Embed(ForwardContext& ctx, KvCache& kv,
                                         const std::vector<TokenId>& tokens, Pooling pooling,
                                         SeqId seq = 0);

// Pools rows (n_rows, n_embd) and L2-normalises; exposed for tests.
std::vector<float> PoolAndNormalize(const ForwardOutput& hidden, Pooling pooling);

}  // namespace llmesh::engine
