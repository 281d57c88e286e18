// The fast forward pass, built for continuous batching: one call runs a
// Batch of tokens from any number of sequences. Each weight matrix is applied
// once to every token in the batch (prefill is matrix-matrix), and each token
// attends over its own sequence's K/V read from a KvCache.
//
// A ForwardContext owns the scratch buffers, so one exists per scheduler
// thread; the Model it reads is shared and immutable.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/engine/batch.h"
#include "llmesh/engine/kv_cache.h"
#include "llmesh/engine/model.h"
#include "llmesh/engine/rope.h"
#include "llmesh/engine/thread_pool.h"

namespace llmesh::engine {

enum class OutputKind {
  kLogits,      // (n_vocab) per output token
  kEmbeddings,  // (n_embd) hidden state after the final norm, no lm head
};

// Rows for the batch entries whose `output` flag was set, in batch order.
struct ForwardOutput {
  OutputKind kind = OutputKind::kLogits;
  int64_t width = 0;                 // n_vocab or n_embd
  std::vector<int32_t> batch_index;  // (n_out) batch entry of each row
  std::vector<float> data;           // (n_out, width)

  int32_t n_rows() const { return static_cast<int32_t>(batch_index.size()); }
  std::span<const float> Row(int32_t i) const {
    return {data.data() + static_cast<size_t>(i) * width, static_cast<size_t>(width)};
  }
  // The row produced for batch entry `b`, or an empty span if it had none.
  std::span<const float> ForBatchEntry(int32_t b) const;
};

// A fresh KV cache sized for `model` holding up to n_ctx positions per sequence.
std::unique_ptr<KvCache> MakeKvCache(const Model& model, int32_t n_ctx, int32_t max_seqs = 0);

class ForwardContext {
 public:
  // n_ubatch: most tokens pushed through the layers at once; larger batches
  // are split in order (scratch memory grows with it).
  ForwardContext(const Model& model, ThreadPool& pool, int32_t n_ubatch = 512);

  // Runs `batch`, storing every token's K/V in `kv`, and fills `out` with a
  // row per output-flagged token. Per sequence, the batch's positions must be
  // consecutive, in order, and start at or before the sequence's current
  // length (no holes); the sequence then ends at its last batch position.
  // Validation happens before anything is written; a KV cache that runs
  // out of room (RESOURCE_EXHAUSTED) may leave earlier sequences truncated
  // to their batch positions.
  absl::Status Decode(const Batch& batch, KvCache& kv, ForwardOutput* out,
                      OutputKind kind = OutputKind::kLogits);

  const Model& model() const { return model_; }
  ThreadPool& pool() { return pool_; }

 private:
  // Layers for batch entries [begin, end), writing final hidden rows of the
  // output-flagged ones to out_hidden (already normed).
  void RunChunk(const Batch& batch, int32_t begin, int32_t end, KvCache& kv);
  void Attention(const Batch& batch, int32_t begin, int32_t n, int64_t il, const KvCache& kv);
  void Reserve(int32_t n_tokens);
  // The distinct rotations of the model's layers for a cache of n_ctx
  // positions per sequence (ropes_, layer_rope_).
  void SetRopes(int32_t n_ctx);
  // MatMul on the pool, or on the calling thread alone when the product is
  // too small to repay waking the workers.
  void Mm(const WeightView& w, const float* x, int64_t n_tok, float* y);
  void MmMany(std::initializer_list<const WeightView*> ws, const float* x, int64_t n_tok,
              std::initializer_list<float*> ys);

  const Model& model_;
  ThreadPool& pool_;
  ThreadPool serial_{1};  // no workers: runs on the caller
  const int32_t n_ubatch_;

  // Scratch, sized for n_ubatch tokens (T):
  std::vector<float> x_;           // (T, n_embd) residual stream
  std::vector<float> xb_;          // (T, n_embd) normed input to a sublayer
  std::vector<float> xb2_;         // (T, n_embd) sublayer output
  std::vector<float> q_;           // (T, n_head * hd_k)
  std::vector<float> k_;           // (T, n_head_kv * hd_k)
  std::vector<float> v_;           // (T, n_head_kv * hd_v)
  std::vector<float> att_;         // (T, n_head * hd_v) attention output
  std::vector<float> hb_;          // (T, n_ff) gate, then silu(gate) * up
  std::vector<float> hb2_;         // (T, n_ff) up
  std::vector<float> scores_;      // (n_threads, n_ctx) attention weights per worker
  std::vector<float> rope_cs_;     // (n_ropes, T, n_rot) cos/sin of each token's angles per rotation
  std::vector<RopeParams> ropes_;  // (n_ropes) distinct rotations (one, or local + global)
  std::vector<int> layer_rope_;    // (n_layer) index into ropes_, -1 for a NoPE layer
  int32_t ropes_n_ctx_ = -1;       // the n_ctx ropes_ were set for
  std::vector<float> out_hidden_;  // (n_out, n_embd) normed final hidden states
  int32_t scores_ctx_ = 0;
};

}  // namespace llmesh::engine
