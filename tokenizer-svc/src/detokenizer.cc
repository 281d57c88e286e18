#include "llmesh/tokenizer/detokenizer.h"

#include "absl/strings/str_cat.h"
#include "decode_stream.h"

namespace llmesh::tokenizer {

struct StreamingDetokenizer::State {
  explicit State(const Tokenizer& tok, const DecodeOptions& opts) : stream(tok, opts) {}
  DecodeStream stream;
};

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tok, DecodeOptions opts)
    : tok_(&tok), opts_(opts), state_(std::make_unique<State>(tok, opts)) {}
StreamingDetokenizer::~StreamingDetokenizer() = default;
StreamingDetokenizer::StreamingDetokenizer(StreamingDetokenizer&&) noexcept = default;
StreamingDetokenizer& StreamingDetokenizer::operator=(StreamingDetokenizer&&) noexcept = default;

absl::StatusOr<std::string> StreamingDetokenizer::Push(int32_t id) {
  if (id < 0 || id >= tok_->n_vocab()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is out of range [0, ", tok_->n_vocab(), ")"));
  }
  std::string out;
  state_->stream.Push(id, &out);
  return out;
}

std::string StreamingDetokenizer::Flush() {
  std::string out;
  state_->stream.Finish(&out);
  return out;
}

void StreamingDetokenizer::Reset() { state_ = std::make_unique<State>(*tok_, opts_); }

}  // namespace llmesh::tokenizer
