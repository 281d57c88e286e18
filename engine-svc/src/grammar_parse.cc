// GBNF → Grammar. The dialect is llama.cpp's (grammars/README.md there):
//   name ::= alternatives          rules; `root` is where matching starts
//   a b | c                        sequence, alternatives
//   ( ... )                        groups (newlines allowed inside)
//   x* x+ x? x{m} x{m,} x{m,n}     repetition
//   "lit\n"  [a-z]  [^"]  .        literals (escapes \x \u \U \t \r \n \\ \" \[ \]),
//                                  classes, negated classes, any character
//   # comment                      to end of line
// Repetitions are rewritten into helper rules here, so the matcher only ever
// sees rule references and character sets. The grammar is untrusted: every
// error is INVALID_ARGUMENT with line:column, and sizes are capped as built.
#include <algorithm>
#include <functional>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "llmesh/engine/grammar.h"

namespace llmesh::engine {

namespace {

using Elems = std::vector<GrammarElement>;
constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool IsCharSetStart(GrammarOp op) {
  return op == GrammarOp::kChar || op == GrammarOp::kCharNot || op == GrammarOp::kCharAny;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

class GrammarParser {
 public:
  GrammarParser(std::string_view src, const GrammarLimits& limits) : src_(src), limits_(limits) {}

  absl::StatusOr<std::shared_ptr<const Grammar>> Run() {
    if (src_.size() > limits_.max_text_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("grammar: ", src_.size(), " bytes exceeds the limit of ",
                                                     limits_.max_text_bytes));
    }
    SkipSpace(true);
    while (ok() && pos_ < src_.size()) {
      ParseRule();
      SkipSpace(true);
    }
    if (!ok()) return status_;
    for (size_t id = 0; id < rules_.size(); ++id) {
      if (!defined_[id]) return ErrorAt(first_use_[id], absl::StrCat("undefined rule '", names_[id], "'"));
    }
    auto root = ids_.find("root");
    if (root == ids_.end()) return ErrorAt(src_.size(), "no 'root' rule");
    if (absl::Status s = CheckLeftRecursion(); !s.ok()) return s;

    auto g = std::shared_ptr<Grammar>(new Grammar());
    g->limits_ = limits_;
    g->root_ = root->second;
    g->rule_alts_.resize(rules_.size());
    for (size_t id = 0; id < rules_.size(); ++id) {
      const uint32_t base = static_cast<uint32_t>(g->elems_.size());
      const Elems& body = rules_[id];
      g->rule_alts_[id].push_back(base);
      for (size_t i = 0; i < body.size(); ++i) {
        g->elems_.push_back(body[i]);
        if (body[i].op == GrammarOp::kAlt) g->rule_alts_[id].push_back(base + static_cast<uint32_t>(i) + 1);
      }
    }
    return std::shared_ptr<const Grammar>(std::move(g));
  }

 private:
  bool ok() const { return status_.ok(); }

  absl::Status ErrorAt(size_t at, std::string_view msg) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("grammar: ", line, ":", col, ": ", std::string(msg)));
  }
  void Fail(size_t at, std::string_view msg) {
    if (ok()) status_ = ErrorAt(at, msg);
  }

  char Peek(size_t off = 0) const { return pos_ + off < src_.size() ? src_[pos_ + off] : '\0'; }
  bool AtEnd() const { return pos_ >= src_.size(); }

  // Spaces, tabs and comments; newlines too where a rule may continue.
  void SkipSpace(bool newline_ok) {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else if (newline_ok && (c == '\n' || c == '\r')) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string ParseName() {
    const size_t start = pos_;
    while (pos_ < src_.size() && IsNameChar(src_[pos_])) ++pos_;
    return std::string(src_.substr(start, pos_ - start));
  }

  uint32_t SymbolId(const std::string& name, size_t at) {
    auto [it, inserted] = ids_.try_emplace(name, static_cast<uint32_t>(rules_.size()));
    if (inserted) NewRuleSlot(name, at);
    return it->second;
  }

  uint32_t NewRuleSlot(const std::string& name, size_t at) {
    if (rules_.size() >= limits_.max_rules) {
      Fail(at, absl::StrCat("more than ", limits_.max_rules, " rules (after expanding repetitions)"));
    }
    rules_.emplace_back();
    names_.push_back(name);
    defined_.push_back(0);
    first_use_.push_back(at);
    def_pos_.push_back(at);
    return static_cast<uint32_t>(rules_.size() - 1);
  }

  // A helper rule (group or repetition) with the given body (alternatives
  // already separated by kAlt); returns its id.
  uint32_t AddHelperRule(const std::string& parent, Elems body, size_t at) {
    const uint32_t id = NewRuleSlot(absl::StrCat(parent, "_", ++n_helpers_), at);
    body.push_back({GrammarOp::kEnd, 0});
    CountElements(body.size(), at);
    rules_[id] = std::move(body);
    defined_[id] = 1;
    return id;
  }

  void CountElements(size_t n, size_t at) {
    n_elements_ += n;
    if (n_elements_ > limits_.max_elements) {
      Fail(at, absl::StrCat("grammar exceeds ", limits_.max_elements, " elements (after expanding repetitions)"));
    }
  }

  void ParseRule() {
    const size_t start = pos_;
    const std::string name = ParseName();
    if (name.empty()) return Fail(start, "expected a rule name");
    SkipSpace(false);
    if (src_.substr(pos_, 3) != "::=") return Fail(pos_, absl::StrCat("expected '::=' after '", name, "'"));
    pos_ += 3;
    SkipSpace(true);
    const uint32_t id = SymbolId(name, start);
    if (defined_[id]) return Fail(start, absl::StrCat("rule '", name, "' is defined twice"));
    defined_[id] = 1;  // before the body, so a recursive reference is not "undefined"
    def_pos_[id] = start;
    Elems body = ParseAlternates(name, false, 0);
    if (!ok()) return;
    body.push_back({GrammarOp::kEnd, 0});
    CountElements(body.size(), start);
    rules_[id] = std::move(body);
    SkipSpace(false);
    if (!AtEnd() && Peek() != '\n' && Peek() != '\r') {
      return Fail(pos_, absl::StrCat("unexpected '", std::string(1, Peek()), "' (expected end of rule)"));
    }
  }

  Elems ParseAlternates(const std::string& rule, bool nested, int depth) {
    Elems out;
    ParseSequence(rule, nested, depth, &out);
    while (ok() && Peek() == '|') {
      ++pos_;
      SkipSpace(true);
      out.push_back({GrammarOp::kAlt, 0});
      ParseSequence(rule, nested, depth, &out);
    }
    return out;
  }

  void ParseSequence(const std::string& rule, bool nested, int depth, Elems* out) {
    size_t last_item = out->size();  // start of the last item, for repetitions
    bool have_item = false;
    while (ok() && !AtEnd()) {
      const size_t at = pos_;
      const char c = Peek();
      if (c == '"') {
        ++pos_;
        last_item = out->size();
        while (ok() && !AtEnd() && Peek() != '"') {
          const uint32_t cp = ParseChar();
          out->push_back({GrammarOp::kChar, cp});
        }
        if (ok() && AtEnd()) return Fail(at, "unterminated string literal");
        ++pos_;
        have_item = out->size() > last_item;  // "" is an empty item: nothing to repeat
      } else if (c == '[') {
        ++pos_;
        last_item = out->size();
        GrammarOp first = GrammarOp::kChar;
        if (Peek() == '^') {
          ++pos_;
          first = GrammarOp::kCharNot;
        }
        bool any = false;
        while (ok() && !AtEnd() && Peek() != ']') {
          const uint32_t lo = ParseChar();
          out->push_back({any ? GrammarOp::kCharAlt : first, lo});
          any = true;
          if (Peek() == '-' && Peek(1) != ']' && Peek(1) != '\0') {
            ++pos_;
            const size_t hi_at = pos_;
            const uint32_t hi = ParseChar();
            if (ok() && hi < lo) return Fail(hi_at, "character range is reversed");
            out->push_back({GrammarOp::kCharRangeUpper, hi});
          }
        }
        if (ok() && AtEnd()) return Fail(at, "unterminated character class");
        if (ok() && !any) return Fail(at, "empty character class");
        ++pos_;
        have_item = true;
      } else if (c == '.') {
        ++pos_;
        last_item = out->size();
        out->push_back({GrammarOp::kCharAny, 0});
        have_item = true;
      } else if (IsNameChar(c)) {
        last_item = out->size();
        const std::string name = ParseName();
        out->push_back({GrammarOp::kRuleRef, SymbolId(name, at)});
        have_item = true;
      } else if (c == '(') {
        if (depth + 1 > limits_.max_nesting) return Fail(at, "groups nested too deeply");
        ++pos_;
        SkipSpace(true);
        Elems inner = ParseAlternates(rule, true, depth + 1);
        if (!ok()) return;
        if (Peek() != ')') return Fail(at, "unclosed '('");
        ++pos_;
        last_item = out->size();
        out->push_back({GrammarOp::kRuleRef, AddHelperRule(rule, std::move(inner), at)});
        have_item = true;
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!have_item) return Fail(at, absl::StrCat("'", std::string(1, c), "' without an item to repeat"));
        uint32_t min = 0, max = kUnbounded;
        ++pos_;
        if (c == '+') min = 1;
        if (c == '?') max = 1;
        if (c == '{' && !ParseBraces(at, &min, &max)) return;
        Repeat(rule, last_item, min, max, at, out);
        have_item = false;  // x** is an error, as in llama.cpp
      } else {
        break;  // '|', ')', newline, or something the caller reports
      }
      if (!ok()) return;
      SkipSpace(nested);
    }
  }

  bool ParseBraces(size_t at, uint32_t* min, uint32_t* max) {
    auto number = [&](uint32_t* v) {
      SkipSpace(false);
      const size_t start = pos_;
      uint64_t x = 0;
      while (Peek() >= '0' && Peek() <= '9') {
        x = std::min<uint64_t>(x * 10 + static_cast<uint64_t>(Peek() - '0'), uint64_t{1} << 40);
        ++pos_;
      }
      if (pos_ == start) return false;
      if (x > limits_.max_repeat) {
        Fail(start, absl::StrCat("repetition count ", x, " exceeds ", limits_.max_repeat));
        return false;
      }
      *v = static_cast<uint32_t>(x);
      SkipSpace(false);
      return true;
    };
    if (!number(min)) {
      Fail(pos_, "expected a number in '{'");
      return false;
    }
    if (Peek() == '}') {
      ++pos_;
      *max = *min;
      return true;
    }
    if (Peek() != ',') {
      Fail(pos_, "expected ',' or '}' in repetition");
      return false;
    }
    ++pos_;
    SkipSpace(false);
    if (Peek() == '}') {
      ++pos_;
      return true;  // {m,}
    }
    if (!number(max)) {
      if (ok()) Fail(pos_, "expected a number or '}' in repetition");
      return false;
    }
    if (Peek() != '}') {
      Fail(pos_, "expected '}'");
      return false;
    }
    ++pos_;
    if (*max < *min) {
      Fail(at, absl::StrCat("repetition {", *min, ",", *max, "} has max < min"));
      return false;
    }
    return true;
  }

  // Replaces the item at out[item..] with `min` copies followed by up to
  // max - min optional ones (nested, so there is one way to match each count)
  // or a starred tail when unbounded.
  void Repeat(const std::string& rule, size_t item, uint32_t min, uint32_t max, size_t at, Elems* out) {
    Elems span(out->begin() + static_cast<ptrdiff_t>(item), out->end());
    out->resize(item);
    GrammarElement ref = span.size() == 1 && span[0].op == GrammarOp::kRuleRef
                             ? span[0]
                             : GrammarElement{GrammarOp::kRuleRef, AddHelperRule(rule, span, at)};
    if (!ok()) return;
    CountElements(min, at);
    if (!ok()) return;
    for (uint32_t i = 0; i < min; ++i) out->push_back(ref);
    if (max == kUnbounded) {
      // star ::= item star |
      const uint32_t star = NewRuleSlot(absl::StrCat(rule, "_", ++n_helpers_), at);
      if (!ok()) return;
      rules_[star] = {ref, {GrammarOp::kRuleRef, star}, {GrammarOp::kAlt, 0}, {GrammarOp::kEnd, 0}};
      defined_[star] = 1;
      CountElements(4, at);
      out->push_back({GrammarOp::kRuleRef, star});
      return;
    }
    if (max == min) return;
    // opt_1 ::= item | ;  opt_k ::= item opt_{k-1} |
    uint32_t prev = 0;
    for (uint32_t k = 1; k <= max - min && ok(); ++k) {
      Elems body = {ref};
      if (k > 1) body.push_back({GrammarOp::kRuleRef, prev});
      body.push_back({GrammarOp::kAlt, 0});
      prev = AddHelperRule(rule, std::move(body), at);
    }
    out->push_back({GrammarOp::kRuleRef, prev});
  }

  // One character of a literal or class: UTF-8 or an escape.
  uint32_t ParseChar() {
    const size_t at = pos_;
    const unsigned char c = static_cast<unsigned char>(Peek());
    if (c == '\\') {
      ++pos_;
      const char e = Peek();
      ++pos_;
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<uint32_t>(e);
        case 'x': return ParseHex(2, at);
        case 'u': return ParseHex(4, at);
        case 'U': return ParseHex(8, at);
        default: Fail(at, absl::StrCat("unknown escape '\\", std::string(1, e), "'")); return 0;
      }
    }
    if (c == '\n' || c == '\r') {
      Fail(at, "newline inside a literal or class");
      return 0;
    }
    // UTF-8 decode, strictly: the grammar's own text must be well formed.
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0 || c == 0xC0 || c == 0xC1 || c > 0xF4) {
      Fail(at, "invalid UTF-8 in grammar");
      return 0;
    }
    uint32_t cp = n == 0 ? c : c & (0x3F >> n);
    ++pos_;
    for (int i = 0; i < n; ++i) {
      const unsigned char b = static_cast<unsigned char>(Peek());
      if ((b & 0xC0) != 0x80) {
        Fail(at, "invalid UTF-8 in grammar");
        return 0;
      }
      cp = (cp << 6) | (b & 0x3F);
      ++pos_;
    }
    return cp;
  }

  uint32_t ParseHex(int digits, size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const int h = HexValue(Peek());
      if (h < 0) {
        Fail(at, absl::StrCat("expected ", digits, " hex digits in escape"));
        return 0;
      }
      v = v * 16 + static_cast<uint32_t>(h);
      ++pos_;
    }
    if (v > 0x10FFFF) Fail(at, "code point above U+10FFFF");
    return v;
  }

  // A rule that can reach itself before reading a character would make the
  // matcher expand forever (llama.cpp rejects these too). Edges go from a
  // rule to each rule that can start it: those at the front of an
  // alternative, or after a prefix of rules that can all match "".
  absl::Status CheckLeftRecursion() {
    const size_t n = rules_.size();
    std::vector<uint8_t> nullable(n, 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t id = 0; id < n; ++id) {
        if (nullable[id]) continue;
        bool alt_nullable = true;
        for (const GrammarElement& e : rules_[id]) {
          if (e.op == GrammarOp::kAlt || e.op == GrammarOp::kEnd) {
            if (alt_nullable) {
              nullable[id] = 1;
              changed = true;
              break;
            }
            alt_nullable = true;
          } else if (e.op == GrammarOp::kRuleRef) {
            alt_nullable = alt_nullable && nullable[e.value];
          } else if (IsCharSetStart(e.op)) {
            alt_nullable = false;
          }
        }
      }
    }
    std::vector<std::vector<uint32_t>> starts(n);
    for (size_t id = 0; id < n; ++id) {
      bool front = true;
      for (const GrammarElement& e : rules_[id]) {
        if (e.op == GrammarOp::kAlt || e.op == GrammarOp::kEnd) {
          front = true;
        } else if (front && e.op == GrammarOp::kRuleRef) {
          starts[id].push_back(e.value);
          front = nullable[e.value];
        } else if (IsCharSetStart(e.op)) {
          front = false;
        }
      }
    }
    // Iterative DFS (rules may number thousands): 0 new, 1 on the path, 2 done.
    std::vector<uint8_t> color(n, 0);
    std::vector<std::pair<uint32_t, size_t>> path;
    for (uint32_t r = 0; r < n; ++r) {
      if (color[r] != 0) continue;
      path.push_back({r, 0});
      color[r] = 1;
      while (!path.empty()) {
        auto& [node, next] = path.back();
        if (next == starts[node].size()) {
          color[node] = 2;
          path.pop_back();
          continue;
        }
        const uint32_t to = starts[node][next++];
        if (color[to] == 1) {
          // Name a rule the user wrote, not a generated helper.
          std::string who = names_[to];
          for (auto& [id, _] : path) {
            if (ids_.contains(names_[id])) who = names_[id];
          }
          return ErrorAt(def_pos_[to], absl::StrCat("left recursion: rule '", who,
                                                    "' can reach itself without reading a character"));
        }
        if (color[to] == 0) {
          color[to] = 1;
          path.push_back({to, 0});
        }
      }
    }
    return absl::OkStatus();
  }

  std::string_view src_;
  const GrammarLimits& limits_;
  size_t pos_ = 0;
  absl::Status status_;
  std::vector<Elems> rules_;
  std::vector<std::string> names_;
  std::vector<uint8_t> defined_;
  std::vector<size_t> first_use_, def_pos_;
  absl::flat_hash_map<std::string, uint32_t> ids_;  // named (user) rules only
  size_t n_elements_ = 0;
  uint32_t n_helpers_ = 0;
};

absl::StatusOr<std::shared_ptr<const Grammar>> Grammar::Parse(std::string_view text,
                                                              const GrammarLimits& limits) {
  return GrammarParser(text, limits).Run();
}

}  // namespace llmesh::engine
