#include "llmesh/engine/embed.h"

namespace llmesh::engine {

std::vector<float> PoolAndNormalize(const ForwardOutput& hidden, Pooling pooling) {
  return PoolAndNormalizeRows(hidden.data.data(), hidden.n_rows(), hidden.width, pooling);
}

absl::StatusOr<std::vector<float>> Embed(ForwardContext& ctx, KvCache& kv,
                                         const std::vector<TokenId>& tokens, Pooling pooling,
                                         SeqId seq) {
  if (tokens.empty()) return absl::InvalidArgumentError("cannot embed an empty token list");
  if (pooling == Pooling::kCls) {
    // A decoder's first token sees nothing after it: CLS pooling means
    // nothing without bidirectional attention.
    return absl::InvalidArgumentError("CLS pooling needs an encoder (bert) model; use MEAN or LAST");
  }
  kv.RemoveSeq(seq);
  Batch batch;
  // Mean pooling needs every token's hidden state; last pooling only one.
  batch.AddSequence(tokens, 0, seq, /*all_outputs=*/pooling != Pooling::kLast);
  ForwardOutput out;
  absl::Status s = ctx.Decode(batch, kv, &out, OutputKind::kEmbeddings);
  kv.RemoveSeq(seq);
  if (!s.ok()) return s;
  return PoolAndNormalize(out, pooling);
}

}  // namespace llmesh::engine
