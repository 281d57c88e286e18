// Incremental decoding for streamed generation: Push() each generated id and
// forward the returned text. Every delta is valid UTF-8 (an incomplete
// multi-byte character, e.g. from byte-fallback tokens, is held until it
// completes) and the concatenated deltas plus Flush() equal
// Tokenizer::Decode of the whole sequence with the same options.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace llmesh::tokenizer {

class StreamingDetokenizer {
 public:
  // `tok` must outlive this object.
  explicit StreamingDetokenizer(const Tokenizer& tok, DecodeOptions opts = {});
  ~StreamingDetokenizer();
  StreamingDetokenizer(StreamingDetokenizer&&) noexcept;
  StreamingDetokenizer& operator=(StreamingDetokenizer&&) noexcept;

  // Text that became final with this token (possibly empty).
  // INVALID_ARGUMENT for an out-of-range id; the state is then unchanged.
  absl::StatusOr<std::string> Push(int32_t id);
  // Text still held back at end of stream (an incomplete character becomes
  // U+FFFD). The detokenizer is reset afterwards.
  std::string Flush();
  void Reset();

 private:
  struct State;
  const Tokenizer* tok_;
  DecodeOptions opts_;
  std::unique_ptr<State> state_;
};

}  // namespace llmesh::tokenizer
