#include "llmesh/engine/kv_model.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_format.h"

namespace llmesh::engine {

ModelKvCache::ModelKvCache(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v, int32_t n_ctx,
                           int32_t block_size, int32_t n_blocks, std::vector<uint8_t> swa_layers,
                           int32_t window, int32_t n_window_blocks)
    : KvCache(n_layer, n_embd_k, n_embd_v, n_ctx) {
  if (window <= 0 || swa_layers.size() != static_cast<size_t>(n_layer)) swa_layers.clear();
  const int64_t n_swa = std::count(swa_layers.begin(), swa_layers.end(), 1);
  if (n_layer - n_swa > 0) {
    main_pool_ = std::make_unique<PagedKvCache>(n_layer - n_swa, n_embd_k, n_embd_v, n_ctx, block_size, n_blocks);
  }
  if (n_swa > 0) {
    window_pool_ = std::make_unique<PagedKvCache>(n_swa, n_embd_k, n_embd_v, n_ctx, block_size,
                                                  n_window_blocks, window);
  }
  int64_t next_main = 0, next_window = 0;
  for (int64_t il = 0; il < n_layer; ++il) {
    const bool slides = !swa_layers.empty() && swa_layers[il];
    slots_.push_back(slides ? LayerSlot{window_pool_.get(), next_window++} : LayerSlot{main_pool_.get(), next_main++});
  }
}

std::vector<PagedKvCache*> ModelKvCache::pools() const {
  std::vector<PagedKvCache*> p;
  if (main_pool_) p.push_back(main_pool_.get());
  if (window_pool_) p.push_back(window_pool_.get());
  return p;
}

absl::Status ModelKvCache::Prepare(SeqId seq, int32_t n_pos) {
  const int32_t old_len = main().SeqLength(seq);
  // A rewind the windowed pool must refuse is refused before any pool moves.
  if (window_pool_ && n_pos >= 0 && n_pos < old_len &&
      std::max(0, n_pos - window_pool_->window() + 1) < window_pool_->FirstKept(seq)) {
    return window_pool_->Prepare(seq, n_pos);  // FAILED_PRECONDITION, nothing changed
  }
  auto ps = pools();
  for (size_t i = 0; i < ps.size(); ++i) {
    absl::Status st = ps[i]->Prepare(seq, n_pos);
    if (st.ok()) continue;
    // Only growth can fail now: the pools that grew go back to the old
    // length (a truncation, which allocates nothing).
    for (size_t j = 0; j < i; ++j) {
      if (n_pos > old_len) ps[j]->Prepare(seq, old_len).IgnoreError();
    }
    return st;
  }
  return absl::OkStatus();
}

float* ModelKvCache::KRow(SeqId seq, int64_t layer, int32_t pos) {
  const LayerSlot& s = slots_[layer];
  return s.pool->KRow(seq, s.layer, pos);
}

float* ModelKvCache::VRow(SeqId seq, int64_t layer, int32_t pos) {
  const LayerSlot& s = slots_[layer];
  return s.pool->VRow(seq, s.layer, pos);
}

KvSpan ModelKvCache::Span(SeqId seq, int64_t layer, int32_t pos0, int32_t n) const {
  const LayerSlot& s = slots_[layer];
  return s.pool->Span(seq, s.layer, pos0, n);
}

void ModelKvCache::RemoveSeq(SeqId seq) {
  for (PagedKvCache* p : pools()) p->RemoveSeq(seq);
}

void ModelKvCache::Clear() {
  for (PagedKvCache* p : pools()) p->Clear();
}

size_t ModelKvCache::BytesAllocated() const {
  size_t b = 0;
  for (PagedKvCache* p : pools()) b += p->BytesAllocated();
  return b;
}

int32_t ModelKvCache::FirstKept(SeqId seq) const {
  return window_pool_ ? window_pool_->FirstKept(seq) : 0;
}

void ModelKvCache::Trim(SeqId seq) {
  if (window_pool_) window_pool_->Trim(seq);
}

absl::Status ModelKvCache::SetTokens(SeqId seq, int32_t pos0, std::span<const TokenId> tokens) {
  for (PagedKvCache* p : pools()) {
    if (auto st = p->SetTokens(seq, pos0, tokens); !st.ok()) return st;
  }
  return absl::OkStatus();
}

int32_t ModelKvCache::AttachPrefix(SeqId seq, std::span<const TokenId> prompt) {
  if (main().SeqLength(seq) > 0) return 0;
  prefix_query_tokens_ += static_cast<int64_t>(prompt.size());
  auto ps = pools();
  int32_t reused = std::numeric_limits<int32_t>::max();
  for (PagedKvCache* p : ps) reused = std::min(reused, p->AttachPrefix(seq, prompt));
  // Both pools keep only what both matched.
  for (PagedKvCache* p : ps) {
    if (reused == 0) {
      p->RemoveSeq(seq);
    } else if (p->SeqLength(seq) > reused) {
      p->Prepare(seq, reused).IgnoreError();  // a truncation within the window just attached
    }
  }
  prefix_hit_tokens_ += reused;
  return reused;
}

absl::Status ModelKvCache::Fork(SeqId src, SeqId dst) {
  auto ps = pools();
  for (size_t i = 0; i < ps.size(); ++i) {
    if (auto st = ps[i]->Fork(src, dst); !st.ok()) {
      for (size_t j = 0; j < i; ++j) ps[j]->RemoveSeq(dst);
      return st;
    }
  }
  return absl::OkStatus();
}

KvStats ModelKvCache::stats() const {
  KvStats st = main().stats();
  st.prefix_query_tokens = prefix_query_tokens_;
  st.prefix_hit_tokens = prefix_hit_tokens_;
  if (window_pool_ && main_pool_) {
    const KvStats w = window_pool_->stats();
    st.window_blocks_total = w.blocks_total;
    st.window_blocks_used = w.blocks_used;
  }
  return st;
}

absl::Status ModelKvCache::CheckInvariants() const {
  for (PagedKvCache* p : pools()) {
    if (auto st = p->CheckInvariants(); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ModelKvCache>> MakeModelKvCache(const Model& model, int32_t n_ctx,
                                                              size_t budget_bytes, int32_t block_size,
                                                              int32_t max_seqs, int32_t max_batch_tokens) {
  const ModelParams& hp = model.params();
  if (block_size < 1) return absl::InvalidArgumentError(absl::StrFormat("block size %d < 1", block_size));
  if (n_ctx < 1) return absl::InvalidArgumentError(absl::StrFormat("n_ctx %d < 1", n_ctx));
  const int64_t n_swa_layers = hp.n_swa > 0 ? std::count(hp.swa_layers.begin(), hp.swa_layers.end(), 1) : 0;
  const int64_t n_main_layers = hp.n_layer - n_swa_layers;
  const size_t per_main = PagedKvCache::BlockBytes(n_main_layers, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(), block_size);
  const size_t per_window = PagedKvCache::BlockBytes(n_swa_layers, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(), block_size);
  const size_t per_all = per_main + per_window;
  const size_t n_all = per_all == 0 ? 0 : budget_bytes / per_all;
  if (n_all == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("KV budget of %d bytes holds no block of %d bytes", budget_bytes, per_all));
  }
  auto clamp = [](size_t n) {
    return static_cast<int32_t>(std::min<size_t>(n, static_cast<size_t>(std::numeric_limits<int32_t>::max())));
  };
  if (n_swa_layers == 0) {
    return std::make_unique<ModelKvCache>(hp.n_layer, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(), n_ctx, block_size,
                                          clamp(n_all));
  }
  // Per sequence, the window plus a step's new positions, each end possibly
  // in a partial block.
  const int64_t window = std::min<int64_t>(hp.n_swa, n_ctx);
  const size_t per_seq = static_cast<size_t>((window + max_batch_tokens) / block_size + 2);
  const size_t n_window = std::min(n_all, static_cast<size_t>(std::max(1, max_seqs)) * per_seq);
  const size_t n_main = per_main == 0 ? 0 : (budget_bytes - n_window * per_window) / per_main;
  return std::make_unique<ModelKvCache>(hp.n_layer, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(), n_ctx, block_size,
                                        clamp(n_main), hp.swa_layers, static_cast<int32_t>(window),
                                        clamp(n_window));
}

}  // namespace llmesh::engine
