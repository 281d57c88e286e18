// The grammar's pushdown matcher: a state is a set of stacks of element
// positions; reading a code point keeps the stacks whose top character set
// accepts it, moves them past it and expands rule references on the new top
// until every stack's top is a character set again (or the stack is empty,
// meaning the input may end). Parse() rejected left recursion, so expansion
// always terminates; a work budget and a stack-count cap bound it anyway.
#include <algorithm>

#include "grammar_internal.h"
#include "llmesh/engine/grammar.h"

namespace llmesh::engine {

namespace {

bool IsEndOfAlt(GrammarOp op) { return op == GrammarOp::kEnd || op == GrammarOp::kAlt; }

uint64_t HashStack(const uint32_t* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  return h;
}

}  // namespace

// Output of one Advance: the encoded set being built and its stacks' hashes
// (for de-duplication: ambiguous grammars reach the same stack many ways).
struct Grammar::Scratch {
  std::vector<uint32_t>* out = nullptr;
  std::vector<std::pair<uint64_t, uint32_t>> seen;  // (hash, offset of the stack's len)
  size_t budget = 0;                                // Expand calls left
  size_t max_stacks = 0;

  void Add(const std::vector<uint32_t>& stack) {
    std::vector<uint32_t>& o = *out;
    const uint64_t h = HashStack(stack.data(), stack.size());
    for (const auto& [sh, off] : seen) {
      if (sh == h && o[off] == stack.size() && std::equal(stack.begin(), stack.end(), o.begin() + off + 1)) return;
    }
    // Past the cap the extra stacks are dropped: what remains is still sound
    // (every allowed token continues a valid parse), only less complete.
    if (seen.size() >= max_stacks) return;
    seen.push_back({h, static_cast<uint32_t>(o.size())});
    o.push_back(static_cast<uint32_t>(stack.size()));
    o.insert(o.end(), stack.begin(), stack.end());
    ++o[0];
  }
};

void Grammar::Expand(std::vector<uint32_t>& stack, Scratch& s) const {
  if (s.budget == 0) return;
  --s.budget;
  if (stack.empty() || elems_[stack.back()].op != GrammarOp::kRuleRef) {
    s.Add(stack);
    return;
  }
  const uint32_t pos = stack.back();
  stack.pop_back();
  const uint32_t next = pos + 1;
  const bool has_next = !IsEndOfAlt(elems_[next].op);
  for (uint32_t alt : rule_alts_[elems_[pos].value]) {
    const size_t mark = stack.size();
    if (has_next) stack.push_back(next);
    if (!IsEndOfAlt(elems_[alt].op)) stack.push_back(alt);
    Expand(stack, s);
    stack.resize(mark);
  }
  stack.push_back(pos);
}

bool Grammar::CharMatches(uint32_t pos, uint32_t cp) const {
  const GrammarElement* e = &elems_[pos];
  if (e->op == GrammarOp::kCharAny) return true;
  const bool positive = e->op == GrammarOp::kChar;
  bool found = false;
  do {
    const uint32_t lo = e->value;
    uint32_t hi = lo;
    if (e[1].op == GrammarOp::kCharRangeUpper) {
      hi = e[1].value;
      e += 2;
    } else {
      e += 1;
    }
    found = found || (lo <= cp && cp <= hi);
  } while (e->op == GrammarOp::kCharAlt);
  return found == positive;
}

uint32_t Grammar::CharSetEnd(uint32_t pos) const {
  if (elems_[pos].op == GrammarOp::kCharAny) return pos + 1;
  do {
    pos += elems_[pos + 1].op == GrammarOp::kCharRangeUpper ? 2 : 1;
  } while (elems_[pos].op == GrammarOp::kCharAlt);
  return pos;
}

namespace {
thread_local std::vector<uint32_t> tl_stack;  // Expand's working stack
thread_local std::vector<std::pair<uint64_t, uint32_t>> tl_seen;
}  // namespace

void Grammar::InitialSet(std::vector<uint32_t>* out) const {
  out->assign(1, 0);
  Scratch s{out, std::move(tl_seen), limits_.max_stacks * 64, limits_.max_stacks};
  s.seen.clear();
  for (uint32_t alt : rule_alts_[root_]) {
    tl_stack.clear();
    if (!IsEndOfAlt(elems_[alt].op)) tl_stack.push_back(alt);
    Expand(tl_stack, s);
  }
  tl_seen = std::move(s.seen);
}

bool Grammar::Advance(std::span<const uint32_t> set, uint32_t cp, std::vector<uint32_t>* out) const {
  out->assign(1, 0);
  if (set.empty()) return false;
  Scratch s{out, std::move(tl_seen), limits_.max_stacks * 64, limits_.max_stacks};
  s.seen.clear();
  size_t i = 1;
  for (uint32_t k = 0; k < set[0]; ++k) {
    const uint32_t len = set[i];
    const uint32_t* st = &set[i + 1];
    i += 1 + len;
    if (len == 0 || !CharMatches(st[len - 1], cp)) continue;
    tl_stack.assign(st, st + len - 1);
    const uint32_t next = CharSetEnd(st[len - 1]);
    if (!IsEndOfAlt(elems_[next].op)) tl_stack.push_back(next);
    Expand(tl_stack, s);
  }
  tl_seen = std::move(s.seen);
  return (*out)[0] > 0;
}

bool Grammar::AcceptsSomeOf(std::span<const uint32_t> set, uint32_t lo, uint32_t hi) const {
  if (set.empty()) return false;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  size_t i = 1;
  for (uint32_t k = 0; k < set[0]; ++k) {
    const uint32_t len = set[i];
    const uint32_t* st = &set[i + 1];
    i += 1 + len;
    if (len == 0) continue;
    const GrammarElement* e = &elems_[st[len - 1]];
    if (e->op == GrammarOp::kCharAny) return true;
    const bool positive = e->op == GrammarOp::kChar;
    ranges.clear();
    do {
      const uint32_t rlo = e->value;
      uint32_t rhi = rlo;
      if (e[1].op == GrammarOp::kCharRangeUpper) {
        rhi = e[1].value;
        e += 2;
      } else {
        e += 1;
      }
      if (positive && rlo <= hi && lo <= rhi) return true;
      ranges.push_back({rlo, rhi});
    } while (e->op == GrammarOp::kCharAlt);
    if (positive) continue;
    // Negated: is some code point of [lo, hi] outside every excluded range?
    std::sort(ranges.begin(), ranges.end());
    uint64_t cur = lo;
    for (const auto& [rlo, rhi] : ranges) {
      if (rlo > cur) break;
      cur = std::max<uint64_t>(cur, static_cast<uint64_t>(rhi) + 1);
    }
    if (cur <= hi) return true;
  }
  return false;
}

bool Grammar::SetCanEnd(std::span<const uint32_t> set) {
  if (set.empty()) return false;
  size_t i = 1;
  for (uint32_t k = 0; k < set[0]; ++k) {
    if (set[i] == 0) return true;
    i += 1 + set[i];
  }
  return false;
}

// ---- GrammarMatcher ---------------------------------------------------------

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  grammar_->InitialSet(&set_);
}

bool GrammarMatcher::AcceptCodePoint(uint32_t cp) {
  if (dead_ || partial_left_ != 0) return !(dead_ = true);
  if (!grammar_->Advance(set_, cp, &next_)) return !(dead_ = true);
  set_.swap(next_);
  return true;
}

bool GrammarMatcher::AcceptBytes(std::string_view bytes) {
  grammar_internal::Utf8State u;
  u.cp = partial_;
  u.left = static_cast<uint8_t>(partial_left_);
  u.len = static_cast<uint8_t>(partial_len_);
  for (char c : bytes) {
    if (dead_) return false;
    const int r = u.Step(static_cast<uint8_t>(c));
    if (r < 0) return !(dead_ = true);
    if (r == 0) {
      if (!grammar_->AcceptsSomeOf(set_, u.lo(), u.hi())) return !(dead_ = true);
      continue;
    }
    partial_left_ = 0;
    if (!AcceptCodePoint(u.cp)) return false;
  }
  partial_ = u.cp;
  partial_left_ = u.left;
  partial_len_ = u.len;
  return !dead_;
}

bool GrammarMatches(const std::shared_ptr<const Grammar>& grammar, std::string_view text) {
  GrammarMatcher m(grammar);
  return m.AcceptBytes(text) && m.CanEnd();
}

}  // namespace llmesh::engine
