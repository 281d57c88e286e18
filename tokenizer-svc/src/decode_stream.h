// The one decoding pipeline behind Tokenizer::Decode and
// StreamingDetokenizer: piece lookup -> leading-space removal -> optional
// clean-up -> UTF-8 repair. Sharing it makes streamed == one-shot by construction.
#pragma once

#include <cstdint>
#include <string>

#include "clean_spaces.h"
#include "llmesh/tokenizer/tokenizer.h"
#include "unicode.h"

namespace llmesh::tokenizer {

class DecodeStream {
 public:
  DecodeStream(const Tokenizer& tok, const DecodeOptions& opts);
  // `id` must be valid. Appends text that is final.
  void Push(int32_t id, std::string* out);
  // Appends the held-back tail; the stream is back at its initial state.
  void Finish(std::string* out);

 private:
  void Emit(std::string_view piece, std::string* out);

  const Tokenizer* tok_;
  DecodeOptions opts_;
  bool clean_;
  bool first_ = true;
  bool remove_space_;
  CleanSpacesFilter cleaner_;
  unicode::Utf8Sanitizer utf8_;
  std::string scratch_;
};

}  // namespace llmesh::tokenizer
