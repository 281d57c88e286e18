#include "llmesh/engine/kv_cache.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace llmesh::engine {

ContiguousKvCache::ContiguousKvCache(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v,
                                     int32_t n_ctx, int32_t span_size, int32_t max_seqs)
    : KvCache(n_layer, n_embd_k, n_embd_v, n_ctx),
      span_size_(std::max(1, span_size)),
      max_seqs_(max_seqs) {}

const ContiguousKvCache::Seq* ContiguousKvCache::Find(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? nullptr : it->second.get();
}

int32_t ContiguousKvCache::SeqLength(SeqId seq) const {
  const Seq* s = Find(seq);
  return s ? s->length : 0;
}

absl::Status ContiguousKvCache::Prepare(SeqId seq, int32_t n_pos) {
  if (n_pos < 0 || n_pos > n_ctx_) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("sequence %d needs %d positions, context holds %d", seq, n_pos, n_ctx_));
  }
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) {
    if (max_seqs_ > 0 && static_cast<int32_t>(seqs_.size()) >= max_seqs_) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("KV cache already holds %d sequences", max_seqs_));
    }
    auto s = std::make_unique<Seq>();
    s->k.resize(n_layer_);
    s->v.resize(n_layer_);
    it = seqs_.emplace(seq, std::move(s)).first;
  }
  Seq& s = *it->second;
  if (n_pos > s.capacity) {
    // Doubling in whole spans keeps reallocation (and copying) logarithmic
    // in the sequence length during decode.
    int64_t cap = std::max<int64_t>(s.capacity * 2, span_size_);
    while (cap < n_pos) cap *= 2;
    cap = (cap + span_size_ - 1) / span_size_ * span_size_;
    cap = std::min<int64_t>(cap, (n_ctx_ + span_size_ - 1) / span_size_ * span_size_);
    for (int64_t l = 0; l < n_layer_; ++l) {
      s.k[l].resize(static_cast<size_t>(cap * n_embd_k_));
      s.v[l].resize(static_cast<size_t>(cap * n_embd_v_));
    }
    s.capacity = static_cast<int32_t>(cap);
  }
  s.length = n_pos;
  return absl::OkStatus();
}

float* ContiguousKvCache::KRow(SeqId seq, int64_t layer, int32_t pos) {
  Seq* s = seqs_.at(seq).get();
  return s->k[layer].data() + static_cast<size_t>(pos) * n_embd_k_;
}

float* ContiguousKvCache::VRow(SeqId seq, int64_t layer, int32_t pos) {
  Seq* s = seqs_.at(seq).get();
  return s->v[layer].data() + static_cast<size_t>(pos) * n_embd_v_;
}

KvSpan ContiguousKvCache::Span(SeqId seq, int64_t layer, int32_t pos0, int32_t n) const {
  const Seq* s = Find(seq);
  KvSpan span;
  span.pos0 = pos0;
  span.n = n;
  span.k = s->k[layer].data() + static_cast<size_t>(pos0) * n_embd_k_;
  span.v = s->v[layer].data() + static_cast<size_t>(pos0) * n_embd_v_;
  span.k_stride = static_cast<size_t>(n_embd_k_);
  span.v_stride = static_cast<size_t>(n_embd_v_);
  return span;
}

void ContiguousKvCache::RemoveSeq(SeqId seq) { seqs_.erase(seq); }

void ContiguousKvCache::Clear() { seqs_.clear(); }

size_t ContiguousKvCache::BytesAllocated() const {
  size_t bytes = 0;
  for (const auto& [id, s] : seqs_) {
    bytes += static_cast<size_t>(s->capacity) * (n_embd_k_ + n_embd_v_) * n_layer_ * sizeof(float);
  }
  return bytes;
}

}  // namespace llmesh::engine
