#include "decode_stream.h"

namespace llmesh::tokenizer {

DecodeStream::DecodeStream(const Tokenizer& tok, const DecodeOptions& opts)
    : tok_(&tok),
      opts_(opts),
      clean_(opts.clean_spaces && tok.vocab().clean_spaces()),
      remove_space_(tok.vocab().add_space_prefix()) {}

void DecodeStream::Emit(std::string_view piece, std::string* out) {
  if (piece.empty()) return;
  if (!clean_) {
    utf8_.Feed(piece, out);
    return;
  }
  scratch_.clear();
  cleaner_.Feed(piece, &scratch_);
  utf8_.Feed(scratch_, out);
}

void DecodeStream::Push(int32_t id, std::string* out) {
  std::string_view piece = tok_->PieceUnchecked(id, !opts_.skip_special);
  // The encoder prefixes a space to text that starts the input (or follows a
  // special token); decoding drops it from the first piece. Unlike
  // llama_detokenize, a leading BOS does not use up that removal, so the
  // prompt's first word comes back without the added space.
  if (first_) {
    first_ = false;
    if (id == tok_->bos_id()) {
      Emit(piece, out);
      return;
    }
  }
  if (remove_space_) {
    remove_space_ = false;
    if (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
  }
  Emit(piece, out);
}

void DecodeStream::Finish(std::string* out) {
  if (clean_) {
    scratch_.clear();
    cleaner_.Finish(&scratch_);
    utf8_.Feed(scratch_, out);
    cleaner_.Reset();
  }
  utf8_.Finish(out);
  utf8_.Reset();
  first_ = true;
  remove_space_ = tok_->vocab().add_space_prefix();
}

}  // namespace llmesh::tokenizer
