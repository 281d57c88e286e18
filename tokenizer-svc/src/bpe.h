// Byte-level BPE (llama.cpp's llm_tokenizer_bpe): pre-tokenize with the
// model's regexes, map bytes to GPT-2's printable code points, then merge the
// lowest-ranked adjacent pair within each piece until no merge applies.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/tokenizer/vocab.h"
#include "pretokenizer.h"

namespace llmesh::tokenizer {

class BpeEncoder {
 public:
  static absl::StatusOr<std::unique_ptr<BpeEncoder>> Create(const Vocab& vocab);
  // Thread-safe; appends ids for valid UTF-8 `text` to `out`.
  absl::Status Encode(std::string_view text, std::vector<int32_t>* out) const;

 private:
  explicit BpeEncoder(const Vocab& vocab) : vocab_(vocab) {}
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  const Vocab& vocab_;
  std::unique_ptr<PreTokenizer> pre_;
  std::array<int32_t, 256> byte_char_id_{};  // token of each byte's mapped char, or -1
};

}  // namespace llmesh::tokenizer
