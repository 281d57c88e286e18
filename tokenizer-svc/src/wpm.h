// WordPiece (llama.cpp's llm_tokenizer_wpm): BERT basic normalisation, then
// greedy longest-match-first per word. The GGUF vocabulary stores word-initial
// pieces with a U+2581 prefix and "##" continuations without it, so matching
// "\u2581word" left to right reproduces HF's "##" scheme.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/tokenizer/vocab.h"

namespace llmesh::tokenizer {

// Normalised words of valid UTF-8 `text`: accents stripped (first code point
// of the canonical decomposition, combining marks dropped), lower-cased,
// control characters removed, split on whitespace, and every punctuation
// mark, ASCII symbol and CJK ideograph made a word of its own.
std::vector<std::string> WpmPreprocess(std::string_view text);

absl::Status WpmEncode(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out);

}  // namespace llmesh::tokenizer
