// SentencePiece-style BPE (llama.cpp's llm_tokenizer_spm): merge the adjacent
// pair whose concatenation is the highest-scoring token, repeatedly; symbols
// that never became tokens are emitted as byte-fallback tokens.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/tokenizer/vocab.h"

namespace llmesh::tokenizer {

// `text` must already have spaces escaped to U+2581 (and any prefix space added).
absl::Status SpmEncode(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out);

}  // namespace llmesh::tokenizer
