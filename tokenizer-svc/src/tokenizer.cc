#include "llmesh/tokenizer/tokenizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bpe.h"
#include "decode_stream.h"
#include "llmesh/gguf/gguf_file.h"
#include "special_tokens.h"
#include "spm.h"
#include "unicode.h"
#include "wpm.h"

namespace llmesh::tokenizer {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

void UnescapeSpaces(std::string_view in, std::string* out) {
  for (size_t i = 0; i < in.size();) {
    if (in.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out->push_back(' ');
      i += kSpaceMark.size();
    } else {
      out->push_back(in[i++]);
    }
  }
}

// llama_decode_text: GPT-2 printable code points back to raw bytes.
void ByteDecodeText(std::string_view text, std::string* out) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    const size_t bad = unicode::FindInvalidUtf8(text.substr(pos, unicode::Utf8SeqLen(text[pos])));
    int b = -1;
    if (bad == std::string_view::npos) {
      b = unicode::ByteDecode(unicode::DecodeValid(text, &pos));
    } else {
      pos += 1;
    }
    if (b >= 0) {
      out->push_back(static_cast<char>(b));
    } else {  // not a byte-level code point: same marker llama.cpp emits
      absl::StrAppend(out, "[UNK_BYTE_0x");
      for (size_t k = start; k < pos; ++k) absl::StrAppendFormat(out, "%02x", static_cast<uint8_t>(text[k]));
      out->append(text);
      out->push_back(']');
    }
  }
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocab(Vocab vocab) {
  std::unique_ptr<Tokenizer> tok(new Tokenizer(std::move(vocab)));
  if (absl::Status s = tok->Init(); !s.ok()) return s;
  return tok;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const gguf::GgufFile& file) {
  absl::StatusOr<Vocab> vocab = Vocab::FromGguf(file);
  if (!vocab.ok()) return vocab.status();
  return FromVocab(std::move(*vocab));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  absl::StatusOr<std::unique_ptr<gguf::GgufFile>> file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = FromGguf(**file);
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(path, ": ", tok.status().message()));
  }
  return tok;
}

absl::Status Tokenizer::Init() {
  if (vocab_.type() == VocabType::kBpe) {
    absl::StatusOr<std::unique_ptr<BpeEncoder>> bpe = BpeEncoder::Create(vocab_);
    if (!bpe.ok()) return bpe.status();
    bpe_ = std::move(*bpe);
  }
  // Pieces are rendered once, as llama.cpp's cache_token_to_piece does.
  const int32_t n = vocab_.n_tokens();
  pieces_.resize(n);
  is_special_.assign(n, 0);
  for (int32_t id = 0; id < n; ++id) {
    const TokenData& t = vocab_.token(id);
    std::string& p = pieces_[id];
    switch (t.type) {
      case TokenType::kControl:
      case TokenType::kUnknown:
        is_special_[id] = 1;
        p = t.text;
        break;
      case TokenType::kUserDefined:
        p = t.text;
        break;
      case TokenType::kNormal:
        if (vocab_.type() == VocabType::kBpe) {
          ByteDecodeText(t.text, &p);
        } else {
          UnescapeSpaces(t.text, &p);
        }
        break;
      case TokenType::kByte:
        // llama.cpp's BPE branch renders nothing for byte-typed tokens.
        if (vocab_.type() != VocabType::kBpe) p.push_back(static_cast<char>(vocab_.ByteValue(id)));
        break;
      case TokenType::kUnused:
      case TokenType::kUndefined:
        break;
    }
  }
  return absl::OkStatus();
}

bool Tokenizer::is_control(int32_t id) const { return vocab_.valid_id(id) && is_special_[id]; }

std::string_view Tokenizer::PieceUnchecked(int32_t id, bool special) const {
  if (is_special_[id] && !special) return {};
  return pieces_[id];
}

std::string Tokenizer::TokenToPiece(int32_t id, bool special) const {
  if (!vocab_.valid_id(id)) return {};
  return std::string(PieceUnchecked(id, special));
}

std::string_view Tokenizer::TokenText(int32_t id) const {
  return vocab_.valid_id(id) ? std::string_view(vocab_.token(id).text) : std::string_view();
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, bool add_special,
                                                       bool parse_special) const {
  if (const size_t bad = unicode::FindInvalidUtf8(text); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "text is not valid UTF-8 at byte %d (0x%02X)", bad, static_cast<uint8_t>(text[bad])));
  }
  const std::vector<Fragment> frags = PartitionSpecial(vocab_, text, parse_special);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);

  switch (vocab_.type()) {
    case VocabType::kSpm: {
      if (add_special && vocab_.add_bos()) out.push_back(vocab_.bos());
      // A space is prefixed to text at the start and after every special token.
      bool prev_special = true;
      std::string escaped;
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          prev_special = true;
          continue;
        }
        escaped.clear();
        if (vocab_.add_space_prefix() && prev_special) escaped.append(kSpaceMark);
        for (const char c : text.substr(f.offset, f.length)) {
          if (c == ' ') {
            escaped.append(kSpaceMark);
          } else {
            escaped.push_back(c);
          }
        }
        if (absl::Status s = SpmEncode(vocab_, escaped, &out); !s.ok()) return s;
        prev_special = false;
      }
      if (add_special && vocab_.add_eos()) out.push_back(vocab_.eos());
      break;
    }
    case VocabType::kBpe: {
      if (add_special && vocab_.add_bos()) out.push_back(vocab_.bos());
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          continue;
        }
        if (absl::Status s = bpe_->Encode(text.substr(f.offset, f.length), &out); !s.ok()) return s;
      }
      if (add_special && vocab_.add_eos()) out.push_back(vocab_.eos());
      break;
    }
    case VocabType::kWpm: {
      if (add_special && vocab_.bos() != kNoToken) out.push_back(vocab_.bos());  // [CLS]
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          continue;
        }
        if (absl::Status s = WpmEncode(vocab_, text.substr(f.offset, f.length), &out); !s.ok()) return s;
      }
      if (add_special && vocab_.sep() != kNoToken) out.push_back(vocab_.sep());  // [SEP]
      break;
    }
  }
  return out;
}

absl::StatusOr<std::string> Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  DecodeOptions opts;
  opts.skip_special = skip_special;
  return Decode(ids, opts);
}

absl::StatusOr<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                              const DecodeOptions& opts) const {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!vocab_.valid_id(ids[i])) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[i], " at position ", i,
                                                     " is out of range [0, ", n_vocab(), ")"));
    }
  }
  std::string out;
  DecodeStream stream(*this, opts);
  for (const int32_t id : ids) stream.Push(id, &out);
  stream.Finish(&out);
  return out;
}

}  // namespace llmesh::tokenizer
