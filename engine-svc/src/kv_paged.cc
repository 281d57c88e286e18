// PagedKvCache: the block pool, block tables, copy-on-write and the KvCache
// interface. The prefix index, AttachPrefix and eviction live in
// kv_paged_prefix.cc.
#include "llmesh/engine/kv_paged.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_format.h"

namespace llmesh::engine {

size_t PagedKvCache::BlockBytes(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v,
                                int32_t block_size) {
  return static_cast<size_t>(n_layer) * static_cast<size_t>(block_size) *
         static_cast<size_t>(n_embd_k + n_embd_v) * sizeof(float);
}

PagedKvCache::PagedKvCache(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v, int32_t n_ctx,
                           int32_t block_size, int32_t n_blocks, int32_t window)
    : KvCache(n_layer, n_embd_k, n_embd_v, n_ctx),
      block_size_(std::max(1, block_size)),
      n_blocks_(std::max(0, n_blocks)),
      window_(std::max(0, window)),
      layer_floats_(static_cast<size_t>(block_size_) * static_cast<size_t>(n_embd_k + n_embd_v)),
      block_floats_(static_cast<size_t>(n_layer) * layer_floats_),
      // Zeroed, so every byte of the budget is committed now rather than on
      // first touch, and copies of never-written rows read defined values.
      pool_(std::make_unique<float[]>(static_cast<size_t>(n_blocks_) * block_floats_)),
      tokens_(static_cast<size_t>(n_blocks_) * block_size_, -1),
      blocks_(static_cast<size_t>(n_blocks_)),
      sink_(static_cast<size_t>(std::max(n_embd_k, n_embd_v)), 0.0f) {
  free_.reserve(static_cast<size_t>(n_blocks_));
  // Reversed so blocks are handed out 0, 1, 2, ... (easier to read in tests).
  for (int32_t b = n_blocks_ - 1; b >= 0; --b) free_.push_back(b);
}

absl::StatusOr<std::unique_ptr<PagedKvCache>> MakePagedKvCache(const Model& model, int32_t n_ctx,
                                                              size_t budget_bytes,
                                                              int32_t block_size) {
  const ModelParams& hp = model.params();
  if (block_size < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("block size %d < 1", block_size));
  }
  if (n_ctx < 1) return absl::InvalidArgumentError(absl::StrFormat("n_ctx %d < 1", n_ctx));
  const size_t per_block =
      PagedKvCache::BlockBytes(hp.n_layer, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(), block_size);
  const size_t n_blocks = per_block == 0 ? 0 : budget_bytes / per_block;
  if (n_blocks == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "KV budget of %d bytes holds no block of %d bytes", budget_bytes, per_block));
  }
  const auto n = static_cast<int32_t>(
      std::min<size_t>(n_blocks, static_cast<size_t>(std::numeric_limits<int32_t>::max())));
  return std::make_unique<PagedKvCache>(hp.n_layer, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(), n_ctx,
                                        block_size, n);
}

int32_t PagedKvCache::SeqLength(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second->length;
}

int32_t PagedKvCache::Allocate() {
  int32_t b = -1;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!evictable_.empty()) {
    b = evictable_.begin()->second;  // least recently used cached leaf
    UnindexSubtree(b);
    --n_cached_;
  } else {
    return -1;
  }
  blocks_[b].ref = 1;
  ++n_used_;
  return b;
}

void PagedKvCache::Release(int32_t block) {
  Block& blk = blocks_[block];
  if (--blk.ref > 0) return;
  --n_used_;
  if (blk.indexed) {
    ++n_cached_;
    blk.last_use = ++tick_;
    UpdateEvictable(block);
  } else {
    free_.push_back(block);
  }
}

void PagedKvCache::Acquire(int32_t block) {
  Block& blk = blocks_[block];
  if (blk.ref++ == 0) {
    --n_cached_;
    ++n_used_;
    evictable_.erase({blk.last_use, block});
  }
}

void PagedKvCache::CopyInto(Seq& s, size_t i, int32_t to) {
  const int32_t from = s.blocks[i];
  // Only the rows the sequence holds in this block carry data worth keeping:
  // (rows, n_embd_k) of K and (rows, n_embd_v) of V per layer.
  const int32_t rows =
      std::clamp(s.length - static_cast<int32_t>(i) * block_size_, 0, block_size_);
  const size_t k_floats = static_cast<size_t>(rows) * n_embd_k_;
  const size_t v_floats = static_cast<size_t>(rows) * n_embd_v_;
  const size_t v_off = static_cast<size_t>(block_size_) * n_embd_k_;
  for (int64_t l = 0; l < n_layer_; ++l) {
    const float* src = KBase(from, l);
    float* dst = KBase(to, l);
    std::memcpy(dst, src, k_floats * sizeof(float));
    std::memcpy(dst + v_off, src + v_off, v_floats * sizeof(float));
  }
  s.blocks[i] = to;
  Release(from);
}

bool PagedKvCache::MakeWritable(Seq& s, size_t i) {
  if (Writable(s.blocks[i])) return true;
  const int32_t to = Allocate();
  if (to < 0) return false;
  CopyInto(s, i, to);
  return true;
}

void PagedKvCache::RehashFrom(Seq& s, int32_t pos) {
  s.hashes.resize(std::min(s.hashes.size(), static_cast<size_t>(pos / block_size_)));
}

absl::Status PagedKvCache::Prepare(SeqId seq, int32_t n_pos) {
  if (n_pos < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("sequence %d: n_pos %d < 0", seq, n_pos));
  }
  if (n_pos > n_ctx_) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("sequence %d needs %d positions, context holds %d", seq, n_pos, n_ctx_));
  }
  auto it = seqs_.find(seq);
  const bool created = it == seqs_.end();
  if (created) it = seqs_.emplace(seq, std::make_unique<Seq>()).first;
  Seq& s = *it->second;
  if (s.lost) {
    return absl::DataLossError(absl::StrFormat(
        "sequence %d lost a K/V write when the pool was full; remove it", seq));
  }
  const int32_t old_len = s.length;
  // Rewinding is possible only while the new end's window is still held.
  if (window_ > 0 && n_pos < old_len && std::max(0, n_pos - window_ + 1) < FirstKept(seq)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "sequence %d cannot rewind to %d: its sliding window of %d released positions below %d", seq,
        n_pos, window_, FirstKept(seq)));
  }
  // The previous Decode has finished: its complete blocks can be indexed.
  if (s.dirty) IndexFullBlocks(s);

  const size_t need = static_cast<size_t>((n_pos + block_size_ - 1) / block_size_);
  // Truncating: blocks past the new end go back now (they may be what the
  // copy below needs), and their tokens are no longer this sequence's.
  if (n_pos < old_len) {
    while (s.blocks.size() > need) {
      Release(s.blocks.back());
      s.blocks.pop_back();
    }
    s.length = n_pos;
    s.n_written = std::min(s.n_written, n_pos);
    if (s.tokens.size() > static_cast<size_t>(n_pos)) s.tokens.resize(static_cast<size_t>(n_pos));
    RehashFrom(s, n_pos);
  }

  // Appending: the first write lands at the old end; if that block is
  // shared or indexed it is copied now, while a full pool can still be
  // reported. (Truncating allocates nothing: it may not be followed by a
  // write at all; a rewrite there is copied lazily by KRow/VRow.)
  const auto cow = static_cast<size_t>(old_len / block_size_);
  const bool needs_copy = n_pos > old_len && cow < s.blocks.size() && !Writable(s.blocks[cow]);
  const size_t n_new = need > s.blocks.size() ? need - s.blocks.size() : 0;

  std::vector<int32_t> fresh;
  fresh.reserve(n_new + (needs_copy ? 1 : 0));
  for (size_t k = 0; k < n_new + (needs_copy ? 1 : 0); ++k) {
    const int32_t b = Allocate();
    if (b < 0) {
      for (int32_t f : fresh) Release(f);
      if (created) seqs_.erase(it);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "KV pool full: sequence %d needs %d more blocks, all %d are in use", seq,
          n_new + (needs_copy ? 1 : 0) - k, n_blocks_));
    }
    fresh.push_back(b);
  }
  if (needs_copy) {
    CopyInto(s, cow, fresh.back());
    fresh.pop_back();
  }
  s.blocks.insert(s.blocks.end(), fresh.begin(), fresh.end());
  s.length = n_pos;
  return absl::OkStatus();
}

void PagedKvCache::ReleaseBelow(Seq& s, int32_t pos) {
  const auto n = static_cast<size_t>(std::max(0, pos) / block_size_);
  for (size_t i = 0; i < n && i < s.blocks.size(); ++i) {
    if (s.blocks[i] < 0) continue;
    Release(s.blocks[i]);
    s.blocks[i] = -1;
  }
}

void PagedKvCache::Trim(SeqId seq) {
  auto it = seqs_.find(seq);
  if (window_ == 0 || it == seqs_.end()) return;
  Seq& s = *it->second;
  if (s.dirty) IndexFullBlocks(s);
  ReleaseBelow(s, s.length - window_ + 1);
}

int32_t PagedKvCache::FirstKept(SeqId seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return 0;
  const std::vector<int32_t>& b = it->second->blocks;
  size_t i = 0;
  while (i < b.size() && b[i] < 0) ++i;
  return static_cast<int32_t>(i) * block_size_;
}

float* PagedKvCache::Row(SeqId seq, int64_t layer, int32_t pos, bool v) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return sink_.data();  // not prepared: a caller bug
  Seq& s = *it->second;
  const auto i = static_cast<size_t>(pos / block_size_);
  if (pos < 0 || i >= s.blocks.size() || s.blocks[i] < 0) {
    s.lost = true;
    return sink_.data();
  }
  // A shared block here means the caller rewrites positions Prepare did not
  // expect (see the header): copy now, or drop the write rather than change
  // K/V another sequence or the prefix index relies on.
  if (!Writable(s.blocks[i]) && !MakeWritable(s, i)) {
    s.lost = true;
    return sink_.data();
  }
  // Layer 0's K row comes first for every position a Decode writes, so it
  // marks the position written; the other layers follow in the same Decode,
  // which finishes before any call that indexes.
  if (layer == 0 && !v) {
    if (pos < s.n_written) {
      RehashFrom(s, pos);  // a rewrite
    } else if (pos == s.n_written && ++s.n_written % block_size_ == 0 && !s.dirty) {
      s.dirty = true;
      dirty_.push_back(seq);
    }
  }
  const int32_t r = pos % block_size_;
  float* base = KBase(s.blocks[i], layer);
  if (!v) return base + static_cast<size_t>(r) * n_embd_k_;
  return base + static_cast<size_t>(block_size_) * n_embd_k_ + static_cast<size_t>(r) * n_embd_v_;
}

float* PagedKvCache::KRow(SeqId seq, int64_t layer, int32_t pos) {
  return Row(seq, layer, pos, /*v=*/false);
}

float* PagedKvCache::VRow(SeqId seq, int64_t layer, int32_t pos) {
  return Row(seq, layer, pos, /*v=*/true);
}

KvSpan PagedKvCache::Span(SeqId seq, int64_t layer, int32_t pos0, int32_t n) const {
  KvSpan span;
  auto it = seqs_.find(seq);
  const auto i = static_cast<size_t>(pos0 / block_size_);
  if (it == seqs_.end() || pos0 < 0 || i >= it->second->blocks.size() || it->second->blocks[i] < 0) {
    return span;  // n = 0: not held
  }
  const float* base = KBase(it->second->blocks[i], layer);
  span.k = base;
  span.v = base + static_cast<size_t>(block_size_) * n_embd_k_;
  span.pos0 = pos0;
  span.n = std::min(n, block_size_);
  span.k_stride = static_cast<size_t>(n_embd_k_);
  span.v_stride = static_cast<size_t>(n_embd_v_);
  return span;
}

void PagedKvCache::RemoveSeq(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  // Tail first: later blocks get older ticks, so a chain is evicted from
  // its leaf end (it would be anyway; this keeps the LRU order honest).
  if (it->second->dirty) IndexFullBlocks(*it->second);  // its last full block too
  const std::vector<int32_t>& blocks = it->second->blocks;
  for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) {
    if (*b >= 0) Release(*b);
  }
  seqs_.erase(it);
}

void PagedKvCache::Clear() {
  seqs_.clear();
  index_.clear();
  roots_.clear();
  evictable_.clear();
  std::fill(blocks_.begin(), blocks_.end(), Block{});
  free_.clear();
  dirty_.clear();
  for (int32_t b = n_blocks_ - 1; b >= 0; --b) free_.push_back(b);
  n_used_ = n_cached_ = 0;
}

size_t PagedKvCache::BytesAllocated() const {
  return static_cast<size_t>(n_blocks_) * block_floats_ * sizeof(float);
}

absl::Status PagedKvCache::SetTokens(SeqId seq, int32_t pos0, std::span<const TokenId> tokens) {
  auto it = seqs_.find(seq);
  // Like Prepare, creates the sequence: callers may record a new prompt's
  // tokens before the Decode that computes it.
  if (it == seqs_.end()) it = seqs_.emplace(seq, std::make_unique<Seq>()).first;
  Seq& s = *it->second;
  const auto n = static_cast<int64_t>(tokens.size());
  const auto n_known = static_cast<int32_t>(s.tokens.size());
  if (pos0 < 0 || pos0 > n_known || pos0 + n > n_ctx_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sequence %d: tokens for [%d, %d) but %d are known, context %d", seq, pos0, pos0 + n,
        n_known, n_ctx_));
  }
  for (int64_t k = 0; k < n; ++k) {
    const int32_t p = pos0 + static_cast<int32_t>(k);
    if (p >= n_known || s.tokens[p] == tokens[k]) continue;
    // A different token where K/V is already written: fine in a private
    // block (the caller is rewriting it), wrong in a shared one.
    const auto i = static_cast<size_t>(p / block_size_);
    if (p < s.n_written && i < s.blocks.size() && s.blocks[i] >= 0 && !Writable(s.blocks[i])) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d position %d: token %d, but its shared K/V was computed for %d", seq, p,
          tokens[k], s.tokens[p]));
    }
  }
  if (pos0 + n > n_known) s.tokens.resize(static_cast<size_t>(pos0 + n));
  for (int64_t k = 0; k < n; ++k) {
    const int32_t p = pos0 + static_cast<int32_t>(k);
    // Hashes only cover known tokens, so only a change below n_known voids one.
    if (p < n_known && s.tokens[p] != tokens[k]) RehashFrom(s, p);
    s.tokens[p] = tokens[k];
  }
  IndexFullBlocks(s);
  return absl::OkStatus();
}

absl::Status PagedKvCache::Fork(SeqId src, SeqId dst) {
  if (src == dst) return absl::InvalidArgumentError(absl::StrFormat("fork of %d onto itself", src));
  auto sit = seqs_.find(src);
  if (sit == seqs_.end()) return absl::NotFoundError(absl::StrFormat("no sequence %d", src));
  if (sit->second->lost) {
    return absl::DataLossError(absl::StrFormat("sequence %d lost a K/V write", src));
  }
  auto dit = seqs_.find(dst);
  if (dit != seqs_.end() && dit->second->length > 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("fork target %d already holds %d positions", dst, dit->second->length));
  }
  if (dit != seqs_.end()) RemoveSeq(dst);
  if (sit->second->dirty) IndexFullBlocks(*sit->second);  // share its index entries too
  auto copy = std::make_unique<Seq>(*sit->second);
  copy->dirty = false;
  for (int32_t b : copy->blocks) {
    if (b >= 0) Acquire(b);
  }
  seqs_.emplace(dst, std::move(copy));
  return absl::OkStatus();
}

std::vector<int32_t> PagedKvCache::BlockTable(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? std::vector<int32_t>{} : it->second->blocks;
}

KvStats PagedKvCache::stats() const {
  KvStats st;
  st.blocks_total = n_blocks_;
  st.blocks_used = n_used_;
  st.blocks_cached = n_cached_;
  st.blocks_free = static_cast<int32_t>(free_.size());
  st.prefix_query_tokens = prefix_query_tokens_;
  st.prefix_hit_tokens = prefix_hit_tokens_;
  return st;
}

}  // namespace llmesh::engine
