// Grammar-constrained sampling: GBNF grammars (llama.cpp's dialect), a
// pushdown matcher over UTF-8 code points, a JSON Schema → GBNF compiler, and
// the LogitProcessor that masks every token whose bytes cannot continue a
// valid parse.
//
// How it fits together (the way llama.cpp's llama-grammar works, written
// fresh):
//   text ──Grammar::Parse──▶ Grammar (flat element array; repetition already
//   rewritten into helper rules; left recursion and size limits rejected)
//   state = a set of stacks of element positions (a nondeterministic pushdown
//   automaton); Advance(set, code point) → the next set; empty = dead.
//   TokenPieces (per model, shared): each token's bytes + a prefix tree over
//   them, so masking walks shared prefixes once instead of every token.
//   GrammarConstraint (per sequence): the current set + partial UTF-8 bytes.
//
// Everything here handles untrusted input (grammars and schemas come from
// requests): errors are INVALID_ARGUMENT with line/column, sizes are capped,
// nothing throws or asserts on input.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/engine/sampler.h"

namespace llmesh::tokenizer {
class Tokenizer;
}

namespace llmesh::engine {

// Caps that keep an untrusted grammar from costing unbounded memory or time.
struct GrammarLimits {
  size_t max_text_bytes = 256 * 1024;  // grammar / schema source
  size_t max_rules = 4096;             // after rewriting repetitions
  size_t max_elements = 1 << 18;       // all rules together
  int max_nesting = 128;               // ( ) groups inside one another
  uint32_t max_repeat = 1024;          // m and n in x{m,n}
  size_t max_stacks = 1024;            // stacks per state; beyond, the rest are dropped
};

// One element of a rule body (llama.cpp's encoding). A rule is a list of
// alternatives, each a sequence ending in kAlt (another follows) or kEnd.
// A character set is kChar/kCharNot/kCharAny followed by kCharRangeUpper (the
// previous value is the lower bound) and kCharAlt entries.
enum class GrammarOp : uint8_t {
  kEnd,
  kAlt,
  kRuleRef,
  kChar,
  kCharNot,
  kCharRangeUpper,
  kCharAlt,
  kCharAny,
};

struct GrammarElement {
  GrammarOp op;
  uint32_t value;  // code point or rule id
};

class Grammar {
 public:
  // Parses GBNF. INVALID_ARGUMENT "grammar: <line>:<col>: ..." for syntax
  // errors, undefined or duplicate rules, a missing `root`, left recursion
  // (which would expand forever) and anything past `limits`.
  static absl::StatusOr<std::shared_ptr<const Grammar>> Parse(std::string_view text,
                                                              const GrammarLimits& limits = {});

  // A stack set is encoded flat: [n_stacks, len_0, pos..., len_1, pos..., ...],
  // each stack bottom first, its top (the next element to match, always a
  // character set) last. An empty stack means "the input may end here".
  void InitialSet(std::vector<uint32_t>* out) const;
  // The set after reading `cp` from `set` into `out` (cleared first). Returns
  // false (out holds an empty set) when no stack accepts `cp`.
  bool Advance(std::span<const uint32_t> set, uint32_t cp, std::vector<uint32_t>* out) const;
  // Whether some stack's next character set intersects [lo, hi]: a partial
  // UTF-8 sequence can still complete to a code point the grammar accepts.
  bool AcceptsSomeOf(std::span<const uint32_t> set, uint32_t lo, uint32_t hi) const;
  static bool SetCanEnd(std::span<const uint32_t> set);

  size_t n_rules() const { return rule_alts_.size(); }
  size_t n_elements() const { return elems_.size(); }
  const GrammarLimits& limits() const { return limits_; }

 private:
  friend class GrammarParser;
  struct Scratch;
  void Expand(std::vector<uint32_t>& stack, Scratch& s) const;
  bool CharMatches(uint32_t pos, uint32_t cp) const;
  uint32_t CharSetEnd(uint32_t pos) const;  // position after the set starting at pos

  GrammarLimits limits_;
  std::vector<GrammarElement> elems_;           // every rule, flattened
  std::vector<std::vector<uint32_t>> rule_alts_;  // (n_rules) start of each alternative
  uint32_t root_ = 0;
};

// A matcher over code points for one grammar: for tests and for checking text.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);
  bool AcceptCodePoint(uint32_t cp);  // false: rejected, and the matcher is dead
  // Decodes UTF-8 (partial characters are carried to the next call); false on
  // a rejected character or malformed UTF-8.
  bool AcceptBytes(std::string_view bytes);
  bool CanEnd() const { return !dead_ && partial_left_ == 0 && Grammar::SetCanEnd(set_); }
  bool dead() const { return dead_; }

 private:
  std::shared_ptr<const Grammar> grammar_;
  std::vector<uint32_t> set_, next_;
  uint32_t partial_ = 0;  // a UTF-8 sequence split across AcceptBytes calls
  int partial_left_ = 0;
  int partial_len_ = 0;
  bool dead_ = false;
};

// True when `text` (UTF-8) is in the grammar's language.
bool GrammarMatches(const std::shared_ptr<const Grammar>& grammar, std::string_view text);

// JSON Schema (as JSON text) → GBNF text. Supported: type (string, integer,
// number, boolean, null, object, array, or a list of them), properties,
// required, additionalProperties (false / schema), items, minItems, maxItems,
// minLength, maxLength, pattern (anchored ^...$ with literals, classes, ., groups,
// |, quantifiers), minimum/maximum/exclusive* on integers, enum, const, anyOf,
// oneOf (as anyOf: branches should be disjoint), allOf with one branch, $ref to
// #/$defs/* or #/definitions/*, and annotations (title, description...).
// Anything else is INVALID_ARGUMENT naming the keyword and where it is.
// Objects list properties in declared order; optional ones may be left out.
// Whitespace is compact: at most one space where JSON allows it.
absl::StatusOr<std::string> JsonSchemaToGrammar(std::string_view schema_json,
                                                const GrammarLimits& limits = {});

// The grammar a SamplingConfig asks for: nullptr when neither `grammar` nor
// `json_schema` is set; INVALID_ARGUMENT when both are, or when either does
// not compile.
absl::StatusOr<std::shared_ptr<const Grammar>> CompileSamplingGrammar(const SamplingConfig& config);

// A model's vocabulary as bytes, built once per loaded model and shared by
// every constrained sequence.
class TokenPieces {
 public:
  // pieces[i]: the bytes token i adds to the text; "" for tokens a grammar
  // never allows (control, unused). EOG tokens are allowed when the grammar
  // can end, whatever their piece.
  static std::shared_ptr<const TokenPieces> Build(std::vector<std::string> pieces,
                                                  std::vector<int32_t> eog_ids);
  // From a tokenizer: TokenToPiece(id, special=false), control tokens "",
  // padded with "" up to n_vocab (the model's vocabulary may be larger).
  static std::shared_ptr<const TokenPieces> FromTokenizer(const tokenizer::Tokenizer& tok,
                                                          int32_t n_vocab);

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  bool is_eog(int32_t id) const { return is_eog_[id] != 0; }
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }

  // Prefix tree of the non-empty pieces: node 0 is the root; the children of
  // node n are edges [child_begin[n], child_begin[n+1]) and the tokens ending
  // at n are token_ids [token_begin[n], token_begin[n+1]).
  struct Trie {
    std::vector<uint32_t> child_begin;  // (n_nodes + 1)
    std::vector<uint8_t> edge_byte;     // (n_edges)
    std::vector<uint32_t> edge_node;    // (n_edges)
    std::vector<uint32_t> token_begin;  // (n_nodes + 1)
    std::vector<int32_t> token_ids;     // (n_tokens in the trie)
  };
  const Trie& trie() const { return trie_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<uint8_t> is_eog_;
  std::vector<int32_t> eog_ids_;
  Trie trie_;
};

// The per-sequence constraint: masks, advances, clones (for n > 1 forks).
class GrammarConstraint : public LogitProcessor {
 public:
  GrammarConstraint(std::shared_ptr<const Grammar> grammar,
                    std::shared_ptr<const TokenPieces> vocab);
  ~GrammarConstraint() override;

  void Apply(std::span<float> logits) override;
  void Accept(int32_t token) override;
  void Reset() override;
  std::unique_ptr<LogitProcessor> Clone() const override;

  // Tokens allowed now (what Apply leaves unmasked), for tests and benchmarks.
  void AllowedTokens(std::vector<uint8_t>* allowed);
  bool CanEnd() const;   // the text so far is a complete sentence
  bool dead() const { return dead_; }
  bool finished() const { return finished_; }  // an EOG token was accepted

 private:
  struct WalkCache;
  void Walk(uint32_t node, int32_t set_id, uint32_t partial, int partial_left, int partial_len,
            std::vector<uint8_t>& allowed);

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const TokenPieces> vocab_;
  std::vector<uint32_t> set_;  // current stack set
  std::vector<uint32_t> next_;  // scratch for Accept
  uint32_t partial_ = 0;       // bits of a code point split across tokens
  int partial_left_ = 0;       // its continuation bytes still to come
  int partial_len_ = 0;        // its full length in bytes
  bool dead_ = false;          // a token the grammar rejects was forced in
  bool finished_ = false;
  // Scratch, reused between calls; never shared between clones.
  std::unique_ptr<WalkCache> cache_;
  std::vector<uint8_t> allowed_;
};

}  // namespace llmesh::engine
