// BPE pre-tokenization: the per-model regex lists llama.cpp uses
// (llm_tokenizer_bpe), applied the way its unicode_regex_split applies them:
// each regex runs over each piece left by the previous one, and both the
// matches and the unmatched gaps become pieces. PCRE2 (UTF + UCP + JIT)
// provides the Unicode classes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace llmesh::tokenizer {

// What a `tokenizer.ggml.pre` name implies besides its regexes (llama.cpp's
// per-pre-type flags in llama_vocab::impl::load).
struct PreTypeInfo {
  std::string_view name;       // canonical name
  std::vector<std::string_view> regexes;
  bool clean_spaces = true;    // decode-side " ," / " 's" clean-up
  bool ignore_merges = false;  // whole-word vocab hit skips merging (llama3)
  bool add_bos = false;
};

// nullptr for an unknown name. "" is not a name: callers map it to "default".
const PreTypeInfo* FindPreType(std::string_view name);
// All names FindPreType accepts (for error messages and tests).
std::vector<std::string_view> KnownPreTypeNames();

class PreTokenizer {
 public:
  // Compiles the regexes (JIT when available).
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(const PreTypeInfo& info);
  ~PreTokenizer();

  // Splits valid UTF-8 `text` into pieces; appends piece lengths (bytes, in
  // order, summing to text.size()) to `lengths`. Thread-safe.
  absl::Status Split(std::string_view text, std::vector<size_t>* lengths) const;

 private:
  struct Regex;
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

// Rewrites `\s` / `\S` in a pattern to the explicit White_Space set, because
// PCRE2's UCP `\s` also matches U+180E while llama.cpp's does not. Exposed for tests.
std::string ExpandWhitespaceClasses(std::string_view pattern);

}  // namespace llmesh::tokenizer
