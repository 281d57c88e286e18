// PagedKvCache's prefix index: the hash chain over full blocks, AttachPrefix,
// leaf-first LRU eviction, and the invariant check used by the tests.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "llmesh/engine/kv_paged.h"

namespace llmesh::engine {
namespace {

// Hash of the empty prefix: the parent of every first block.
constexpr uint64_t kRootHash = 0x6c6c6d6573686b76ull;  // "llmeshkv"

// splitmix64's finaliser: every input bit reaches every output bit.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

// Deterministic (unlike absl::Hash, seeded per process), so hashes could be
// logged or compared across replicas. Collisions are harmless: a hit is
// confirmed by comparing the block's tokens and its parent block.
uint64_t PagedKvCache::ChainHash(uint64_t parent, std::span<const TokenId> tokens) {
  uint64_t h = Mix(parent ^ 0x9e3779b97f4a7c15ull);
  for (TokenId t : tokens) h = Mix(h ^ static_cast<uint32_t>(t)) + 0x9e3779b97f4a7c15ull;
  return Mix(h ^ tokens.size());
}

int32_t PagedKvCache::Lookup(uint64_t hash, int32_t parent, std::span<const TokenId> tokens) const {
  auto it = index_.find(hash);
  if (it == index_.end()) return -1;
  const int32_t b = it->second;
  if (blocks_[b].parent != parent) return -1;
  if (!std::equal(tokens.begin(), tokens.end(), Tokens(b))) return -1;
  return b;
}

void PagedKvCache::UpdateEvictable(int32_t block) {
  const Block& blk = blocks_[block];
  if (Evictable(block)) {
    evictable_.insert({blk.last_use, block});
  } else {
    evictable_.erase({blk.last_use, block});
  }
}

void PagedKvCache::Unindex(int32_t block) {
  Block& blk = blocks_[block];
  evictable_.erase({blk.last_use, block});
  index_.erase(blk.hash);
  std::vector<int32_t>& siblings = blk.parent < 0 ? roots_ : blocks_[blk.parent].children;
  siblings.erase(std::find(siblings.begin(), siblings.end(), block));
  // Its parent may have just become a leaf, hence evictable.
  if (blk.parent >= 0) UpdateEvictable(blk.parent);
  blk.indexed = false;
  blk.hash = 0;
  blk.parent = -1;
}

void PagedKvCache::UnindexSubtree(int32_t block) {
  // Preorder without recursion (a chain is as deep as a context is long),
  // then unindexed children first so each one's parent is still indexed.
  std::vector<int32_t> order = {block};
  for (size_t i = 0; i < order.size(); ++i) {
    const std::vector<int32_t>& children = blocks_[order[i]].children;
    order.insert(order.end(), children.begin(), children.end());
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const bool cached_descendant = *it != block && blocks_[*it].ref == 0;
    Unindex(*it);
    if (cached_descendant) {  // nothing holds it any more
      --n_cached_;
      free_.push_back(*it);
    }
  }
}

void PagedKvCache::IndexDirty() {
  for (SeqId id : dirty_) {
    auto it = seqs_.find(id);
    if (it != seqs_.end() && it->second->dirty) IndexFullBlocks(*it->second);
  }
  dirty_.clear();
}

void PagedKvCache::IndexFullBlocks(Seq& s) {
  s.dirty = false;
  if (s.lost) return;  // a dropped write: its rows may not match its tokens
  const int32_t n_full =
      std::min({s.length, s.n_written, static_cast<int32_t>(s.tokens.size())}) / block_size_;
  for (auto i = static_cast<int32_t>(s.hashes.size()); i < n_full; ++i) {
    const int32_t b = s.blocks[i];
    // A windowed pool released it (or its parent) before its tokens were
    // known: the chain cannot continue from here.
    if (b < 0 || (i > 0 && s.blocks[i - 1] < 0)) break;
    const uint64_t parent_hash = i == 0 ? kRootHash : s.hashes[i - 1];
    std::span<const TokenId> toks(s.tokens.data() + static_cast<size_t>(i) * block_size_,
                                  static_cast<size_t>(block_size_));
    const uint64_t h = ChainHash(parent_hash, toks);
    s.hashes.push_back(h);
    Block& blk = blocks_[b];
    if (blk.indexed) continue;  // shared from the index (AttachPrefix, Fork)
    // Only under an indexed parent, so every chain stays reachable from its
    // root. A parent that is not indexed is a duplicate of a block computed
    // concurrently by another sequence: this chain is left out (limitation:
    // continuations of the duplicate are not cached).
    const int32_t parent = i == 0 ? -1 : s.blocks[i - 1];
    if (parent >= 0 && !blocks_[parent].indexed) continue;
    // Same hash already indexed: a duplicate (keep the first) or, rarely, a
    // collision (keep the first too).
    if (!index_.emplace(h, b).second) continue;
    std::copy(toks.begin(), toks.end(), Tokens(b));  // compared on every hit
    blk.indexed = true;
    blk.hash = h;
    blk.parent = parent;
    (parent < 0 ? roots_ : blocks_[parent].children).push_back(b);
    // Content is frozen from here on: a later write into it copies it
    // (Writable() is false for indexed blocks).
  }
}

int32_t PagedKvCache::AttachPrefix(SeqId seq, std::span<const TokenId> prompt) {
  auto it = seqs_.find(seq);
  if (it != seqs_.end() && it->second->length > 0) return 0;
  prefix_query_tokens_ += static_cast<int64_t>(prompt.size());
  IndexDirty();  // running sequences' latest blocks count too
  // The last prompt token always runs through the model for its logits.
  const int32_t limit = static_cast<int32_t>(
      std::min<int64_t>(static_cast<int64_t>(prompt.size()) - 1, n_ctx_));
  const auto n_prompt = static_cast<int32_t>(prompt.size());

  std::vector<int32_t> taken;     // physical blocks to share, in order
  std::vector<uint64_t> hashes;   // chain hashes of the fully shared ones
  int32_t reused = 0;
  int32_t parent = -1;
  uint64_t parent_hash = kRootHash;
  while (reused < limit) {
    const int32_t room = limit - reused;  // positions still allowed
    if (n_prompt - reused >= block_size_) {
      std::span<const TokenId> want = prompt.subspan(reused, block_size_);
      const uint64_t h = ChainHash(parent_hash, want);
      const int32_t b = Lookup(h, parent, want);
      if (b >= 0 && room >= block_size_) {
        taken.push_back(b);
        hashes.push_back(h);
        parent = b;
        parent_hash = h;
        reused += block_size_;
        continue;
      }
      if (b >= 0) {  // the whole block matches but its last positions must run
        taken.push_back(b);
        reused += room;
        break;
      }
    }
    // No full match: the cached child of `parent` sharing the longest run of
    // leading tokens with the rest of the prompt, shared for that run only.
    const int32_t cap = std::min(room, block_size_);
    int32_t best = -1, best_len = 0;
    for (int32_t c : ChildrenOf(parent)) {
      const TokenId* t = Tokens(c);
      int32_t j = 0;
      while (j < cap && t[j] == prompt[reused + j]) ++j;
      if (j > best_len) {
        best = c;
        best_len = j;
      }
    }
    if (best >= 0) {
      taken.push_back(best);
      reused += best_len;
    }
    break;
  }
  if (reused == 0) return 0;

  if (it == seqs_.end()) it = seqs_.emplace(seq, std::make_unique<Seq>()).first;
  Seq& s = *it->second;
  for (int32_t b : taken) Acquire(b);
  s.blocks = std::move(taken);
  s.hashes = std::move(hashes);
  s.length = reused;
  s.tokens.assign(prompt.begin(), prompt.begin() + reused);
  s.n_written = reused;
  prefix_hit_tokens_ += reused;
  return reused;
}

absl::Status PagedKvCache::CheckInvariants() const {
  auto fail = [](auto&&... args) { return absl::InternalError(absl::StrFormat(args...)); };
  std::vector<int32_t> refs(static_cast<size_t>(n_blocks_), 0);
  for (const auto& [id, s] : seqs_) {
    const size_t want = static_cast<size_t>((s->length + block_size_ - 1) / block_size_);
    if (s->blocks.size() != want) {
      return fail("seq %d: %d blocks for length %d", id, s->blocks.size(), s->length);
    }
    if (s->n_written > s->length) return fail("seq %d: %d written > length", id, s->n_written);
    const int32_t complete =
        std::min({s->length, s->n_written, static_cast<int32_t>(s->tokens.size())});
    if (s->hashes.size() > static_cast<size_t>(complete / block_size_)) {
      return fail("seq %d: %d hashes for %d complete positions", id, s->hashes.size(), complete);
    }
    for (size_t i = 0; i < s->blocks.size(); ++i) {
      const int32_t b = s->blocks[i];
      if (b == -1 && window_ > 0) {
        if (i > 0 && s->blocks[i - 1] >= 0) return fail("seq %d: released block %d after a held one", id, i);
        continue;
      }
      if (b < 0 || b >= n_blocks_) return fail("seq %d: block id %d out of range", id, b);
      ++refs[b];
    }
  }
  std::vector<uint8_t> on_free(static_cast<size_t>(n_blocks_), 0);
  for (int32_t b : free_) {
    if (b < 0 || b >= n_blocks_ || on_free[b]++) return fail("free list: bad or repeated %d", b);
  }
  int32_t used = 0, cached = 0, evictable = 0;
  for (int32_t b = 0; b < n_blocks_; ++b) {
    const Block& blk = blocks_[b];
    if (blk.ref != refs[b]) return fail("block %d: refcount %d, tables hold %d", b, blk.ref, refs[b]);
    const int kinds = (blk.ref > 0) + (blk.ref == 0 && blk.indexed) + on_free[b];
    if (kinds != 1) return fail("block %d: ref %d indexed %d free %d", b, blk.ref, blk.indexed, on_free[b]);
    used += blk.ref > 0;
    cached += blk.ref == 0 && blk.indexed;
    if (blk.indexed) {
      auto it = index_.find(blk.hash);
      if (it == index_.end() || it->second != b) return fail("block %d: not in the index", b);
      if (blk.parent >= 0 && !blocks_[blk.parent].indexed) {
        return fail("block %d: parent %d not indexed", b, blk.parent);
      }
      const std::vector<int32_t>& sib = ChildrenOf(blk.parent);
      if (std::count(sib.begin(), sib.end(), b) != 1) return fail("block %d: not its parent's child", b);
      for (int32_t c : blk.children) {
        if (!blocks_[c].indexed || blocks_[c].parent != b) return fail("block %d: bad child %d", b, c);
      }
    } else if (!blk.children.empty()) {
      return fail("block %d: children but not indexed", b);
    }
    const bool in_set = evictable_.count({blk.last_use, b}) > 0;
    if (in_set != Evictable(b)) return fail("block %d: eviction set says %d", b, in_set);
    evictable += in_set;
  }
  if (used != n_used_ || cached != n_cached_) {
    return fail("counters: used %d/%d cached %d/%d", n_used_, used, n_cached_, cached);
  }
  if (evictable != static_cast<int32_t>(evictable_.size())) return fail("eviction set: stale entries");
  if (index_.size() != static_cast<size_t>(std::count_if(blocks_.begin(), blocks_.end(),
                                                          [](const Block& b) { return b.indexed; }))) {
    return fail("index: %d entries for other blocks", index_.size());
  }
  return absl::OkStatus();
}

}  // namespace llmesh::engine
