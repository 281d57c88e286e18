// A paged KV cache with prefix reuse (vLLM's PagedAttention block manager,
// llama.cpp server's prompt cache).
//
// Storage is a pool of fixed-size blocks allocated once from a byte budget;
// it never grows. A block holds `block_size` positions of K and V for every
// layer. Each sequence maps its logical blocks to physical ones through a
// block table, and blocks are refcounted so sequences can share them:
//   - AttachPrefix shares the longest cached run of blocks matching a new
//     prompt (full blocks found by a hash chain, plus a final block matched
//     only in its first j positions);
//   - Fork shares every block of one sequence with another (n > 1 samples).
// A write into a block another sequence may read (refcount > 1) or that the
// prefix index holds (its content must stay what its hash says) first copies
// it to a private block: copy-on-write.
//
// Full blocks whose tokens are known (SetTokens) are indexed by
//   hash_i = H(hash_{i-1}, tokens of block i)
// and outlive their sequences as "cached" blocks (refcount 0) until the pool
// needs room; eviction is LRU over cached blocks that no other cached block
// names as its parent (leaves first), so every indexed block's parent stays
// indexed and a chain is always reachable from its root.
//
// A windowed pool (window > 0, the sliding-window layers of a model, see
// kv_model.h) keeps per sequence only the blocks that the next token can
// attend to: once a Decode has written a sequence up to length L, Trim
// releases every block wholly below L - window + 1 (its table entry becomes
// -1), so between steps a sequence holds about window / block_size blocks
// whatever its length (during a step, also the step's new positions).
// Released blocks that were indexed stay cached for prefix reuse; since the
// chain they start would otherwise pin them, a windowed pool may evict a
// cached block that has cached children, unindexing its whole subtree.
// Truncating a sequence to a position whose window was released is refused
// (FAILED_PRECONDITION).
//
// Threading: one scheduler thread owns the cache and makes every mutating
// call; Span is const and only reads, so attention workers may call it
// concurrently while no mutation runs (during ForwardContext::Decode's
// attention, after all K/V rows of the chunk are written).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/engine/batch.h"
#include "llmesh/engine/kv_cache.h"
#include "llmesh/engine/model.h"

namespace llmesh::engine {

struct KvStats {
  int32_t blocks_total = 0;
  int32_t blocks_used = 0;    // refcount > 0
  int32_t blocks_cached = 0;  // refcount 0, indexed: a reusable prefix, evictable
  int32_t blocks_free = 0;    // on the free list
  int64_t prefix_query_tokens = 0;  // prompt tokens passed to AttachPrefix
  int64_t prefix_hit_tokens = 0;    // of those, positions reused from the cache
  // A model with sliding-window layers: their own pool (kv_model.h).
  int32_t window_blocks_total = 0;
  int32_t window_blocks_used = 0;
};

class PagedKvCache final : public KvCache {
 public:
  // n_blocks blocks of block_size positions each, allocated now.
  PagedKvCache(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v, int32_t n_ctx,
               int32_t block_size, int32_t n_blocks, int32_t window = 0);

  // Bytes one block costs: K and V of block_size positions in every layer.
  static size_t BlockBytes(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v,
                           int32_t block_size);

  // ---- KvCache ----
  int32_t SeqLength(SeqId seq) const override;
  // When growing, also makes the block holding position SeqLength (the
  // first one written) private: copy-on-write. n_pos <= SeqLength only
  // truncates and never allocates. To rewrite positions from p, truncate
  // first with Prepare(seq, p) and append again: a write KRow/VRow still
  // finds shared is copied there, but cannot report a full pool (see KRow).
  // On RESOURCE_EXHAUSTED nothing changed.
  absl::Status Prepare(SeqId seq, int32_t n_pos) override;
  // A shared block reached here (a rewrite without truncating first) is
  // copied on the spot; if the pool has no block left the row goes to a
  // scratch sink, the sequence is marked lost and its next Prepare fails
  // with DATA_LOSS, so shared K/V is never corrupted.
  float* KRow(SeqId seq, int64_t layer, int32_t pos) override;
  float* VRow(SeqId seq, int64_t layer, int32_t pos) override;
  int32_t span_size() const override { return block_size_; }
  KvSpan Span(SeqId seq, int64_t layer, int32_t pos0, int32_t n) const override;
  void RemoveSeq(SeqId seq) override;
  // Drops every sequence and the whole prefix index.
  void Clear() override;
  // The pool, allocated up front: it does not change with use (see stats()).
  size_t BytesAllocated() const override;

  // ---- prefix reuse ----
  // Records the token ids at positions [pos0, pos0 + n) of `seq`, before or
  // after the Decode that writes their K/V (creating the sequence if new),
  // with no hole after the tokens already known
  // (pos0 <= known). A block becomes a reusable prefix once it is full, its
  // tokens are known and its K/V was written by a Decode that has finished;
  // that is checked at the next mutating call (so never mid-Decode).
  // INVALID_ARGUMENT for a token that differs from one whose K/V is already
  // written in a block shared with another sequence or the index.
  absl::Status SetTokens(SeqId seq, int32_t pos0, std::span<const TokenId> tokens);
  // For a new (empty) sequence: shares the longest cached prefix of `prompt`
  // and returns how many positions are reused, at most prompt.size() - 1 so
  // the last prompt token still runs through the model. The caller then
  // decodes prompt[reused..] at positions reused.. . Returns 0 and changes
  // nothing when `seq` already holds positions.
  int32_t AttachPrefix(SeqId seq, std::span<const TokenId> prompt);

  // dst (new or empty) shares all of src's blocks and known tokens; the
  // partial last block is copied on the first write by either.
  absl::Status Fork(SeqId src, SeqId dst);

  KvStats stats() const;
  int32_t block_size() const { return block_size_; }
  int32_t n_blocks() const { return n_blocks_; }
  int32_t window() const { return window_; }
  // The first position of `seq` whose K/V is still held (0 unless windowed).
  int32_t FirstKept(SeqId seq) const override;
  // A windowed pool: indexes the sequence's finished blocks (so they stay
  // reusable prefixes), then releases those below its end's window.
  void Trim(SeqId seq) override;

  // ---- introspection for tests and metrics ----
  // Physical block of each logical block of `seq` (empty if unknown; -1 for
  // a block a windowed pool released).
  std::vector<int32_t> BlockTable(SeqId seq) const;
  int32_t RefCount(int32_t block) const { return blocks_[block].ref; }
  bool IsCached(int32_t block) const { return blocks_[block].indexed; }
  // Checks refcounts against the block tables, the counters, the free list,
  // the index and the eviction set; OK or INTERNAL naming the first mismatch.
  // Counts blocks not yet indexed from the last Decode as not indexed.
  absl::Status CheckInvariants() const;

 private:
  struct Block {
    int32_t ref = 0;       // sequences whose table holds this block
    bool indexed = false;  // in index_: content frozen, reusable
    uint64_t hash = 0;     // chain hash, when indexed
    int32_t parent = -1;   // indexed parent block (-1: first block of a prompt)
    std::vector<int32_t> children;  // indexed blocks naming this one as parent
    uint64_t last_use = 0;          // tick when its refcount last fell to 0
  };
  struct Seq {
    int32_t length = 0;
    int32_t n_written = 0;         // positions [0, n_written) had K/V written or shared
    std::vector<TokenId> tokens;   // known ids of positions [0, size); may pass length
    std::vector<int32_t> blocks;   // (ceil(length / block_size)) physical ids
    std::vector<uint64_t> hashes;  // chain hash of each full, known, written block
    bool dirty = false;            // may have blocks to index (listed in dirty_)
    bool lost = false;             // a write was dropped (see KRow)
  };

  size_t BlockOffset(int32_t block) const { return static_cast<size_t>(block) * block_floats_; }
  float* KBase(int32_t block, int64_t layer) {
    return pool_.get() + BlockOffset(block) + static_cast<size_t>(layer) * layer_floats_;
  }
  const float* KBase(int32_t block, int64_t layer) const {
    return pool_.get() + BlockOffset(block) + static_cast<size_t>(layer) * layer_floats_;
  }
  TokenId* Tokens(int32_t block) { return tokens_.data() + static_cast<size_t>(block) * block_size_; }
  const TokenId* Tokens(int32_t block) const {
    return tokens_.data() + static_cast<size_t>(block) * block_size_;
  }
  bool Writable(int32_t block) const { return blocks_[block].ref == 1 && !blocks_[block].indexed; }

  // A block with refcount 1 from the free list, else by evicting the least
  // recently used cached leaf; -1 when neither exists.
  int32_t Allocate();
  // refcount--, and at 0: cached if indexed, else back to the free list.
  void Release(int32_t block);
  // Refcount++ of a block found in the index (leaves the eviction set).
  void Acquire(int32_t block);
  // Copies block `from` into the fresh `to` and swaps it into s.blocks[i].
  void CopyInto(Seq& s, size_t i, int32_t to);
  // Makes s.blocks[i] private, allocating a copy if needed. False if full.
  bool MakeWritable(Seq& s, size_t i);
  float* Row(SeqId seq, int64_t layer, int32_t pos, bool v);
  // Blocks from the one holding `pos` onwards lose their chain hashes (their
  // K/V or tokens change); they are hashed again once complete.
  void RehashFrom(Seq& s, int32_t pos);

  // Index / eviction (kv_paged_prefix.cc).
  static uint64_t ChainHash(uint64_t parent, std::span<const TokenId> tokens);
  // Indexes s's full, known, written blocks not yet hashed.
  void IndexFullBlocks(Seq& s);
  // IndexFullBlocks for every sequence written since the last call.
  void IndexDirty();
  // The indexed block with `hash` whose parent is `parent` and whose tokens
  // are `tokens`, or -1 (collisions are ruled out by the comparison).
  int32_t Lookup(uint64_t hash, int32_t parent, std::span<const TokenId> tokens) const;
  bool Evictable(int32_t block) const {
    const Block& b = blocks_[block];
    return b.indexed && b.ref == 0 && (b.children.empty() || window_ > 0);
  }
  void UpdateEvictable(int32_t block);
  void Unindex(int32_t block);
  // Unindexes `block`'s indexed descendants (the cached ones go back to the
  // free list), then the block itself: a windowed pool's eviction.
  void UnindexSubtree(int32_t block);
  // A windowed pool: releases the blocks of `s` wholly below `pos`.
  void ReleaseBelow(Seq& s, int32_t pos);
  const std::vector<int32_t>& ChildrenOf(int32_t parent) const {
    return parent < 0 ? roots_ : blocks_[parent].children;
  }

  const int32_t block_size_;
  const int32_t n_blocks_;
  const int32_t window_;  // 0: keep every position
  const size_t layer_floats_;  // block_size * (n_embd_k + n_embd_v)
  const size_t block_floats_;  // n_layer * layer_floats_

  // (n_blocks, n_layer, [K: (block_size, n_embd_k) | V: (block_size, n_embd_v)])
  std::unique_ptr<float[]> pool_;
  std::vector<TokenId> tokens_;  // (n_blocks, block_size) token id at each position
  std::vector<Block> blocks_;    // (n_blocks)
  std::vector<int32_t> free_;    // free block ids (a stack: reuse warm memory)
  std::vector<float> sink_;      // (max(n_embd_k, n_embd_v)) target of dropped writes
  std::vector<SeqId> dirty_;     // sequences with Seq::dirty set (maybe removed since)

  // Sequences by id; Seq is boxed so Span's pointers stay valid across inserts.
  absl::flat_hash_map<SeqId, std::unique_ptr<Seq>> seqs_;

  absl::flat_hash_map<uint64_t, int32_t> index_;  // chain hash -> indexed block
  std::vector<int32_t> roots_;                    // indexed blocks with no parent
  std::set<std::pair<uint64_t, int32_t>> evictable_;  // (last_use, block): LRU first
  uint64_t tick_ = 0;
  int32_t n_used_ = 0, n_cached_ = 0;
  int64_t prefix_query_tokens_ = 0, prefix_hit_tokens_ = 0;
};

// A paged cache for `model`: as many blocks of block_size positions as fit in
// budget_bytes. INVALID_ARGUMENT when block_size < 1 or not one block fits.
absl::StatusOr<std::unique_ptr<PagedKvCache>> MakePagedKvCache(const Model& model, int32_t n_ctx,
                                                              size_t budget_bytes,
                                                              int32_t block_size = 16);

}  // namespace llmesh::engine
