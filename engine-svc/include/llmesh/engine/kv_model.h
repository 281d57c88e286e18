// The KV cache a model's scheduler owns: one paged pool (kv_paged.h) for the
// layers that attend over the whole context and, for a model with
// sliding-window layers (gemma2/3, OLMo 3), a second, windowed pool for
// those, so their K/V stays bounded by the window however long a sequence
// grows (llama.cpp's iSWA cache, vLLM's hybrid allocator). Every call goes to
// both pools; a layer's rows live in its own pool under a pool-local index.
//
// Prefix reuse: a new sequence reuses what both pools still hold (the
// shorter of the two matches). Rewinding a sequence past its window is
// refused by the windowed pool, and so by the whole cache.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/engine/kv_paged.h"
#include "llmesh/engine/model.h"

namespace llmesh::engine {

class ModelKvCache final : public KvCache {
 public:
  // swa_layers: (n_layer) 1 for a layer in the windowed pool (empty: none);
  // window: positions those layers attend to.
  ModelKvCache(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v, int32_t n_ctx, int32_t block_size,
               int32_t n_blocks, std::vector<uint8_t> swa_layers = {}, int32_t window = 0,
               int32_t n_window_blocks = 0);

  // ---- KvCache ----
  int32_t SeqLength(SeqId seq) const override { return main().SeqLength(seq); }
  // Both pools or neither: if the second cannot, the first is put back.
  absl::Status Prepare(SeqId seq, int32_t n_pos) override;
  float* KRow(SeqId seq, int64_t layer, int32_t pos) override;
  float* VRow(SeqId seq, int64_t layer, int32_t pos) override;
  int32_t span_size() const override { return main().block_size(); }
  KvSpan Span(SeqId seq, int64_t layer, int32_t pos0, int32_t n) const override;
  void RemoveSeq(SeqId seq) override;
  void Clear() override;
  size_t BytesAllocated() const override;
  int32_t FirstKept(SeqId seq) const override;
  void Trim(SeqId seq) override;

  // ---- prefix reuse, as PagedKvCache ----
  absl::Status SetTokens(SeqId seq, int32_t pos0, std::span<const TokenId> tokens);
  int32_t AttachPrefix(SeqId seq, std::span<const TokenId> prompt);
  absl::Status Fork(SeqId src, SeqId dst);

  // The full-context pool's blocks (what admission plans with); the
  // windowed pool's in window_blocks_*; prefix counters of the whole cache.
  KvStats stats() const;
  int32_t block_size() const { return main().block_size(); }
  bool windowed() const { return window_pool_ != nullptr; }
  absl::Status CheckInvariants() const;
  // The pools, for tests.
  const PagedKvCache& main() const { return main_pool_ ? *main_pool_ : *window_pool_; }
  const PagedKvCache* window_pool() const { return window_pool_.get(); }

 private:
  struct LayerSlot {
    PagedKvCache* pool;
    int64_t layer;  // index inside that pool
  };
  std::vector<PagedKvCache*> pools() const;

  std::unique_ptr<PagedKvCache> main_pool_;    // full-context layers (null if every layer slides)
  std::unique_ptr<PagedKvCache> window_pool_;  // sliding-window layers, or null
  std::vector<LayerSlot> slots_;               // (n_layer)
  int64_t prefix_query_tokens_ = 0, prefix_hit_tokens_ = 0;
};

// A cache for `model` in budget_bytes. Without sliding windows: one pool of
// as many blocks as fit. With them: the windowed pool gets enough blocks for
// max_seqs sequences each holding its window plus a batch of max_batch_tokens
// (at most what the budget would give it unsplit), the main pool the rest.
absl::StatusOr<std::unique_ptr<ModelKvCache>> MakeModelKvCache(const Model& model, int32_t n_ctx,
                                                              size_t budget_bytes, int32_t block_size = 16,
                                                              int32_t max_seqs = 1,
                                                              int32_t max_batch_tokens = 512);

}  // namespace llmesh::engine
