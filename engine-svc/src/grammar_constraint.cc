// GrammarConstraint: the LogitProcessor that keeps a sequence inside a
// grammar, and TokenPieces, the per-model vocabulary it walks.
//
// Masking walks the vocabulary's prefix tree depth first, carrying the stack
// set reached by the bytes so far; a subtree is cut as soon as its prefix is
// rejected, and every token ending at a surviving node is allowed. Stack sets
// are interned and transitions (set, code point) → set memoised, so the many
// tokens that pass through the same state (all of "inside a JSON string")
// cost one hash lookup per byte. Whole masks are memoised per starting state
// too: a sequence that stays in one state (long strings) pays a copy.
#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "grammar_internal.h"
#include "llmesh/engine/grammar.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace llmesh::engine {

namespace {

constexpr size_t kMaxPieceBytes = 512;   // longer pieces stay out of the trie (never allowed)
constexpr size_t kMaxCachedWords = 1 << 22;  // interned sets, in uint32s, before the cache restarts
constexpr size_t kMaxCachedMasks = 32;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

uint64_t HashWords(std::span<const uint32_t> w) {
  uint64_t h = 0xCBF29CE484222325ull ^ w.size();
  for (uint32_t x : w) {
    h ^= x;
    h *= 0x100000001B3ull;
    h ^= h >> 29;
  }
  return h;
}

}  // namespace

// ---- TokenPieces --------------------------------------------------------------

std::shared_ptr<const TokenPieces> TokenPieces::Build(std::vector<std::string> pieces,
                                                      std::vector<int32_t> eog_ids) {
  auto tp = std::make_shared<TokenPieces>();
  const int32_t n = static_cast<int32_t>(pieces.size());
  tp->pieces_ = std::move(pieces);
  tp->is_eog_.assign(tp->pieces_.size(), 0);
  for (int32_t id : eog_ids) {
    if (id >= 0 && id < n && !tp->is_eog_[id]) {
      tp->is_eog_[id] = 1;
      tp->eog_ids_.push_back(id);
    }
  }
  // Build with per-node child lists, then flatten so a walk reads arrays.
  std::vector<std::vector<std::pair<uint8_t, uint32_t>>> children(1);
  std::vector<std::vector<int32_t>> tokens(1);
  for (int32_t id = 0; id < n; ++id) {
    const std::string& p = tp->pieces_[id];
    if (p.empty() || p.size() > kMaxPieceBytes || tp->is_eog_[id]) continue;
    uint32_t node = 0;
    for (char c : p) {
      const uint8_t b = static_cast<uint8_t>(c);
      auto& ch = children[node];
      auto it = std::find_if(ch.begin(), ch.end(), [b](const auto& e) { return e.first == b; });
      if (it != ch.end()) {
        node = it->second;
        continue;
      }
      const uint32_t child = static_cast<uint32_t>(children.size());
      ch.push_back({b, child});
      children.emplace_back();
      tokens.emplace_back();
      node = child;
    }
    tokens[node].push_back(id);
  }
  Trie& t = tp->trie_;
  for (size_t node = 0; node < children.size(); ++node) {
    t.child_begin.push_back(static_cast<uint32_t>(t.edge_byte.size()));
    t.token_begin.push_back(static_cast<uint32_t>(t.token_ids.size()));
    std::sort(children[node].begin(), children[node].end());
    for (const auto& [b, child] : children[node]) {
      t.edge_byte.push_back(b);
      t.edge_node.push_back(child);
    }
    t.token_ids.insert(t.token_ids.end(), tokens[node].begin(), tokens[node].end());
  }
  t.child_begin.push_back(static_cast<uint32_t>(t.edge_byte.size()));
  t.token_begin.push_back(static_cast<uint32_t>(t.token_ids.size()));
  return tp;
}

std::shared_ptr<const TokenPieces> TokenPieces::FromTokenizer(const tokenizer::Tokenizer& tok,
                                                              int32_t n_vocab) {
  std::vector<std::string> pieces(static_cast<size_t>(std::max(n_vocab, 0)));
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < n_vocab && id < tok.n_vocab(); ++id) {
    if (tok.is_eog(id)) eog.push_back(id);
    // Control tokens (BOS, <unk>, chat markers) render as nothing in the
    // text, so a grammar can never ask for them.
    if (!tok.is_control(id)) pieces[id] = tok.TokenToPiece(id, /*special=*/false);
  }
  return Build(std::move(pieces), std::move(eog));
}

// ---- the walk's memo tables ---------------------------------------------------

struct GrammarConstraint::WalkCache {
  std::vector<uint32_t> pool;                       // interned sets, back to back
  std::vector<std::pair<uint32_t, uint32_t>> sets;  // (offset, length) in pool
  absl::flat_hash_map<uint64_t, int32_t> by_hash;   // content hash → set id
  absl::flat_hash_map<uint64_t, int32_t> next;      // (set id << 21 | cp) → set id, -1 dead
  absl::flat_hash_map<uint64_t, std::vector<uint8_t>> masks;  // (set id, partial) → allowed
  std::vector<uint32_t> tmp;

  std::span<const uint32_t> Set(int32_t id) const {
    return {pool.data() + sets[id].first, sets[id].second};
  }

  void Clear() {
    pool.clear();
    sets.clear();
    by_hash.clear();
    next.clear();
    masks.clear();
  }

  int32_t Intern(std::span<const uint32_t> s) {
    const uint64_t h = HashWords(s);
    auto it = by_hash.find(h);
    if (it != by_hash.end()) {
      std::span<const uint32_t> have = Set(it->second);
      if (std::equal(have.begin(), have.end(), s.begin(), s.end())) return it->second;
      // A 64-bit collision: still correct, just not shared.
    }
    const int32_t id = static_cast<int32_t>(sets.size());
    sets.push_back({static_cast<uint32_t>(pool.size()), static_cast<uint32_t>(s.size())});
    pool.insert(pool.end(), s.begin(), s.end());
    if (it == by_hash.end()) by_hash.emplace(h, id);
    return id;
  }

  int32_t Next(const Grammar& g, int32_t id, uint32_t cp) {
    const uint64_t key = (static_cast<uint64_t>(id) << 21) | cp;
    auto it = next.find(key);
    if (it != next.end()) return it->second;
    const int32_t to = g.Advance(Set(id), cp, &tmp) ? Intern(tmp) : -1;
    next.emplace(key, to);
    return to;
  }
};

// ---- GrammarConstraint --------------------------------------------------------

GrammarConstraint::GrammarConstraint(std::shared_ptr<const Grammar> grammar,
                                     std::shared_ptr<const TokenPieces> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), cache_(std::make_unique<WalkCache>()) {
  grammar_->InitialSet(&set_);
}

GrammarConstraint::~GrammarConstraint() = default;

void GrammarConstraint::Reset() {
  grammar_->InitialSet(&set_);
  partial_ = 0;
  partial_left_ = 0;
  partial_len_ = 0;
  dead_ = false;
  finished_ = false;
}

std::unique_ptr<LogitProcessor> GrammarConstraint::Clone() const {
  auto c = std::make_unique<GrammarConstraint>(grammar_, vocab_);
  c->set_ = set_;
  c->partial_ = partial_;
  c->partial_left_ = partial_left_;
  c->partial_len_ = partial_len_;
  c->dead_ = dead_;
  c->finished_ = finished_;
  return c;
}

bool GrammarConstraint::CanEnd() const {
  return !dead_ && partial_left_ == 0 && Grammar::SetCanEnd(set_);
}

void GrammarConstraint::Walk(uint32_t node, int32_t set_id, uint32_t partial, int partial_left,
                             int partial_len, std::vector<uint8_t>& allowed) {
  const TokenPieces::Trie& t = vocab_->trie();
  for (uint32_t e = t.child_begin[node]; e < t.child_begin[node + 1]; ++e) {
    grammar_internal::Utf8State u;
    u.cp = partial;
    u.left = static_cast<uint8_t>(partial_left);
    u.len = static_cast<uint8_t>(partial_len);
    const int r = u.Step(t.edge_byte[e]);
    if (r < 0) continue;
    int32_t child_set = set_id;
    if (r == 1) {
      child_set = cache_->Next(*grammar_, set_id, u.cp);
      if (child_set < 0) continue;
    } else if (!grammar_->AcceptsSomeOf(cache_->Set(set_id), u.lo(), u.hi())) {
      continue;  // no completion of this partial character is accepted
    }
    const uint32_t child = t.edge_node[e];
    for (uint32_t k = t.token_begin[child]; k < t.token_begin[child + 1]; ++k) allowed[t.token_ids[k]] = 1;
    if (r == 1) {
      Walk(child, child_set, 0, 0, 0, allowed);
    } else {
      Walk(child, child_set, u.cp, u.left, u.len, allowed);
    }
  }
}

void GrammarConstraint::AllowedTokens(std::vector<uint8_t>* allowed) {
  const size_t n = static_cast<size_t>(vocab_->n_vocab());
  allowed->assign(n, 0);
  const bool can_end = CanEnd();
  if (!dead_ && !finished_) {
    if (cache_->pool.size() > kMaxCachedWords) cache_->Clear();
    const int32_t root = cache_->Intern(set_);
    const uint64_t key = (static_cast<uint64_t>(root) << 32) |
                         (static_cast<uint64_t>(partial_left_) << 29) | (partial_len_ << 26) | partial_;
    auto it = cache_->masks.find(key);
    if (it != cache_->masks.end()) {
      *allowed = it->second;
    } else {
      Walk(0, root, partial_, partial_left_, partial_len_, *allowed);
      if (cache_->masks.size() >= kMaxCachedMasks) cache_->masks.clear();
      cache_->masks.emplace(key, *allowed);
    }
  }
  // End-of-generation only where the text is complete (or the sequence is
  // already over / was forced off the grammar: then ending is all it can do).
  if (can_end || finished_ || dead_) {
    for (int32_t id : vocab_->eog_ids()) (*allowed)[id] = 1;
  }
}

void GrammarConstraint::Apply(std::span<float> logits) {
  AllowedTokens(&allowed_);
  const size_t n = std::min(logits.size(), allowed_.size());
  for (size_t i = 0; i < n; ++i) {
    if (!allowed_[i]) logits[i] = kNegInf;
  }
  for (size_t i = n; i < logits.size(); ++i) logits[i] = kNegInf;  // no piece known
}

void GrammarConstraint::Accept(int32_t token) {
  if (token < 0 || token >= vocab_->n_vocab() || finished_ || dead_) return;
  if (vocab_->is_eog(token)) {
    finished_ = true;
    return;
  }
  const std::string& piece = vocab_->piece(token);
  if (piece.empty()) {
    dead_ = true;  // a control token was forced in: the text is off the grammar
    return;
  }
  grammar_internal::Utf8State u;
  u.cp = partial_;
  u.left = static_cast<uint8_t>(partial_left_);
  u.len = static_cast<uint8_t>(partial_len_);
  for (char c : piece) {
    const int r = u.Step(static_cast<uint8_t>(c));
    if (r < 0) {
      dead_ = true;
      return;
    }
    if (r == 0) continue;
    if (!grammar_->Advance(set_, u.cp, &next_)) {
      dead_ = true;
      return;
    }
    set_.swap(next_);
  }
  partial_ = u.left != 0 ? u.cp : 0;
  partial_left_ = u.left;
  partial_len_ = u.left != 0 ? u.len : 0;
}

}  // namespace llmesh::engine
