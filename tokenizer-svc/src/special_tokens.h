// Splitting raw text around special tokens before tokenization
// (llama.cpp's tokenizer_st_partition): each special token, longest first,
// splits every remaining text fragment at its leftmost occurrences.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "llmesh/tokenizer/vocab.h"

namespace llmesh::tokenizer {

struct Fragment {
  int32_t token = kNoToken;  // kNoToken: raw text [offset, offset + length)
  size_t offset = 0;
  size_t length = 0;
};

// Control and unknown tokens take part only when `parse_special`;
// user-defined tokens always do.
std::vector<Fragment> PartitionSpecial(const Vocab& vocab, std::string_view text, bool parse_special);

}  // namespace llmesh::tokenizer
