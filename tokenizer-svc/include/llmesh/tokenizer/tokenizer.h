// Text <-> token ids, tokenizing exactly as llama.cpp's llama_tokenize does
// for SentencePiece ("llama"), byte-level BPE ("gpt2") and WordPiece ("bert")
// vocabularies.
//
// All methods are const and keep their scratch per call (or per thread), so
// one Tokenizer may serve concurrent Encode/Decode calls.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/tokenizer/vocab.h"

namespace llmesh::gguf {
class GgufFile;
}

namespace llmesh::tokenizer {

class BpeEncoder;

struct DecodeOptions {
  // Render control/unknown tokens (<s>, </s>, [CLS], <unk>...) as nothing
  // instead of their text.
  bool skip_special = false;
  // Apply the vocabulary's clean-up rule as llama.cpp does (GPT-2-family BPE
  // and WordPiece: " ," -> ",", " 's" -> "'s"...). false gives the plain
  // concatenation of pieces, which round-trips Encode exactly.
  bool clean_spaces = true;
};

class Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocab(Vocab vocab);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const gguf::GgufFile& file);
  // Opens a GGUF file (vocabulary-only files are fine) and reads its tokenizer.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: add BOS/EOS (SPM, BPE, per the vocabulary's add_bos/add_eos)
  //   or [CLS] ... [SEP] (WordPiece).
  // parse_special: recognise control tokens written in the text ("<s>",
  //   "<|im_end|>"). User-defined tokens are always recognised, as in
  //   llama.cpp and HF tokenizers; control tokens never are without it.
  // INVALID_ARGUMENT for text that is not well-formed UTF-8 (with the offset).
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_special,
                                              bool parse_special) const;

  // Ids -> text. Always valid UTF-8: byte tokens that do not form a complete
  // character become U+FFFD. SentencePiece: the space the encoder prefixed is
  // removed from the first piece (a leading BOS does not count as the first
  // piece), so Decode(Encode(x, true, false), {.skip_special = true}) == x.
  // INVALID_ARGUMENT naming the id for ids outside [0, n_vocab).
  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids, bool skip_special = false) const;
  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids, const DecodeOptions& opts) const;

  // The bytes one token contributes to decoded text (may be a partial UTF-8
  // sequence for byte tokens). Control/unknown tokens give their text when
  // `special`, else "". Out-of-range ids give "".
  std::string TokenToPiece(int32_t id, bool special = true) const;
  // The vocabulary text of a token ("▁the", "Ġthe", "<0x0A>"); "" if out of range.
  std::string_view TokenText(int32_t id) const;
  // Exact vocabulary lookup; kNoToken if absent.
  int32_t TextToToken(std::string_view text) const { return vocab_.TextToToken(text); }

  const Vocab& vocab() const { return vocab_; }
  VocabType type() const { return vocab_.type(); }
  int32_t n_vocab() const { return vocab_.n_tokens(); }
  int32_t bos_id() const { return vocab_.bos(); }
  int32_t eos_id() const { return vocab_.eos(); }
  int32_t eot_id() const { return vocab_.eot(); }
  int32_t unk_id() const { return vocab_.unk(); }
  int32_t sep_id() const { return vocab_.sep(); }
  int32_t pad_id() const { return vocab_.pad(); }
  bool add_bos() const { return vocab_.add_bos(); }
  bool add_eos() const { return vocab_.add_eos(); }
  bool is_eog(int32_t id) const { return vocab_.is_eog(id); }
  bool is_control(int32_t id) const;  // control or unknown type
  const std::string& chat_template() const { return vocab_.chat_template(); }

  // Internal, for the streaming detokenizer: piece of a valid id with the
  // special/non-special rendering already resolved.
  std::string_view PieceUnchecked(int32_t id, bool special) const;

 private:
  explicit Tokenizer(Vocab vocab);
  absl::Status Init();

  Vocab vocab_;
  std::unique_ptr<BpeEncoder> bpe_;
  std::vector<std::string> pieces_;  // rendering of each token with special=true
  std::vector<uint8_t> is_special_;  // control/unknown: rendered only when special
};

}  // namespace llmesh::tokenizer
