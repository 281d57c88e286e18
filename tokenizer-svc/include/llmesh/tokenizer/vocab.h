// A tokenizer vocabulary: token texts, scores, types, merges and the special
// token ids, loaded from GGUF `tokenizer.ggml.*` metadata (or built in memory
// for tests) and indexed for lookup. Immutable once built; safe to share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"

namespace llmesh::gguf {
class GgufFile;
}

namespace llmesh::tokenizer {

// tokenizer.ggml.model
enum class VocabType { kSpm, kBpe, kWpm };
std::string_view VocabTypeName(VocabType t);

// tokenizer.ggml.token_type values (same numbering as llama.cpp / gguf-py).
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3,
  kUserDefined = 4, kUnused = 5, kByte = 6,
};

// Extra per-token behaviour, llama.cpp's LSTRIP/RSTRIP attributes: whitespace
// next to the special token is swallowed when it is parsed from text.
enum TokenAttr : uint32_t {
  kAttrLstrip = 1u << 0,
  kAttrRstrip = 1u << 1,
};

inline constexpr int32_t kNoToken = -1;

// Everything the loader reads, in plain form. Optional fields left unset get
// llama.cpp's defaults for the model type.
struct VocabData {
  std::string model = "llama";          // "llama" (SPM), "gpt2" (BPE), "bert" (WPM)
  std::string pre;                      // pre-tokenizer name; empty = "default"
  std::string name;                     // general.name (only used for quirks)
  std::vector<std::string> tokens;
  std::vector<float> scores;            // empty = all 0
  std::vector<int32_t> token_types;     // empty = all kNormal
  std::vector<std::string> merges;      // BPE only, "left right" in rank order
  std::optional<int32_t> bos, eos, eot, unk, sep, pad, cls, mask;
  std::optional<bool> add_bos, add_eos, add_sep, add_space_prefix;
  std::string chat_template;
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  TokenType type = TokenType::kNormal;
  uint32_t attr = 0;  // TokenAttr bits
};

class Vocab {
 public:
  // Validates and indexes `data`. INVALID_ARGUMENT names the first problem
  // (unknown model or pre-tokenizer, array length mismatch, bad token type,
  // malformed byte token such as "<0x-1>", special id out of range...).
  static absl::StatusOr<Vocab> FromData(VocabData data);
  // Reads `tokenizer.ggml.*` from a parsed GGUF file, then FromData.
  static absl::StatusOr<Vocab> FromGguf(const gguf::GgufFile& file);

  VocabType type() const { return type_; }
  const std::string& pre() const { return pre_; }
  int32_t n_tokens() const { return static_cast<int32_t>(tokens_.size()); }
  bool valid_id(int32_t id) const { return id >= 0 && id < n_tokens(); }
  const TokenData& token(int32_t id) const { return tokens_[id]; }

  // Exact text lookup (the last token with a given text wins, as in llama.cpp).
  int32_t TextToToken(std::string_view text) const {
    // absl::string_view: Debian's abseil does not alias it to std::string_view.
    auto it = text_to_id_.find(absl::string_view(text.data(), text.size()));
    return it == text_to_id_.end() ? kNoToken : it->second;
  }
  // SPM byte fallback token for a raw byte (`<0xXX>`, else the 1-byte text).
  int32_t ByteToken(uint8_t b) const { return byte_to_token_[b]; }
  // For byte-typed tokens: the byte value; -1 otherwise.
  int ByteValue(int32_t id) const { return byte_value_[id]; }

  // BPE merge rank of (left, right), or -1. Symbols are identified by token id
  // when both are tokens (fast path) and by text otherwise.
  int32_t MergeRank(int32_t left_id, int32_t right_id) const {
    if (left_id < 0 || right_id < 0) return -1;
    auto it = merge_by_id_.find(PairKey(left_id, right_id));
    return it == merge_by_id_.end() ? -1 : it->second;
  }
  int32_t MergeRankByText(std::string_view left, std::string_view right) const;
  bool has_text_merges() const { return !merge_by_text_.empty(); }

  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }
  int32_t unk() const { return unk_; }
  int32_t sep() const { return sep_; }
  int32_t pad() const { return pad_; }
  int32_t mask() const { return mask_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_sep() const { return add_sep_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool clean_spaces() const { return clean_spaces_; }
  bool ignore_merges() const { return ignore_merges_; }
  int max_token_len() const { return max_token_len_; }
  const std::string& chat_template() const { return chat_template_; }

  // Control/unknown/user-defined tokens with non-empty text, longest first:
  // the candidates matched in raw text before tokenization.
  const std::vector<int32_t>& special_tokens() const { return special_tokens_; }
  // End-of-generation tokens (eos, eot, and the usual end-of-turn texts).
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }

 private:
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  absl::Status Index(const VocabData& data);

  VocabType type_ = VocabType::kSpm;
  std::string pre_;
  std::vector<TokenData> tokens_;
  absl::flat_hash_map<std::string, int32_t> text_to_id_;
  std::vector<int32_t> byte_to_token_;
  std::vector<int16_t> byte_value_;
  absl::flat_hash_map<uint64_t, int32_t> merge_by_id_;
  absl::flat_hash_map<std::string, int32_t> merge_by_text_;  // len-prefixed key
  std::vector<int32_t> special_tokens_;
  std::vector<int32_t> eog_ids_;
  int32_t bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, unk_ = kNoToken;
  int32_t sep_ = kNoToken, pad_ = kNoToken, mask_ = kNoToken;
  bool add_bos_ = false, add_eos_ = false, add_sep_ = false;
  bool add_space_prefix_ = false, clean_spaces_ = false, ignore_merges_ = false;
  int max_token_len_ = 0;
  std::string chat_template_;
};

}  // namespace llmesh::tokenizer
