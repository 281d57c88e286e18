#include "llmesh/engine/embed.h"

#include <cmath>

namespace llmesh::engine {

std::vector<float> PoolAndNormalize(const ForwardOutput& hidden, Pooling pooling) {
  const int64_t n_embd = hidden.width;
  std::vector<float> out(n_embd, 0.0f);
  const int32_t n = hidden.n_rows();
  if (n == 0) return out;
  if (pooling == Pooling::kLast) {
    auto row = hidden.Row(n - 1);
    out.assign(row.begin(), row.end());
  } else {
    std::vector<double> acc(n_embd, 0.0);  // double: long inputs sum many rows
    for (int32_t r = 0; r < n; ++r) {
      auto row = hidden.Row(r);
      for (int64_t i = 0; i < n_embd; ++i) acc[i] += row[i];
    }
    for (int64_t i = 0; i < n_embd; ++i) out[i] = static_cast<float>(acc[i] / n);
  }
  double ss = 0.0;
  for (float v : out) ss += static_cast<double>(v) * v;
  const double norm = std::sqrt(ss);
  if (norm > 0.0) {
    for (float& v : out) v = static_cast<float>(v / norm);
  }
  return out;
}

absl::StatusOr<std::vector<float>> Embed(ForwardContext& ctx, KvCache& kv,
                                         const std::vector<TokenId>& tokens, Pooling pooling,
                                         SeqId seq) {
  if (tokens.empty()) return absl::InvalidArgumentError("cannot embed an empty token list");
  kv.RemoveSeq(seq);
  Batch batch;
  // Mean pooling needs every token's hidden state; last pooling only one.
  batch.AddSequence(tokens, 0, seq, /*all_outputs=*/pooling == Pooling::kMean);
  ForwardOutput out;
  absl::Status s = ctx.Decode(batch, kv, &out, OutputKind::kEmbeddings);
  kv.RemoveSeq(seq);
  if (!s.ok()) return s;
  return PoolAndNormalize(out, pooling);
}

}  // namespace llmesh::engine
