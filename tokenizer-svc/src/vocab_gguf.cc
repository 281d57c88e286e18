// Vocab::FromGguf: reads the `tokenizer.ggml.*` keys. Kept apart from the
// indexing logic so in-memory vocabularies need no GGUF at all.
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "llmesh/gguf/gguf_file.h"
#include "llmesh/tokenizer/vocab.h"

namespace llmesh::tokenizer {
namespace {

// Special token ids are stored as u32 (sometimes i32); 0xFFFFFFFF / -1 and
// other out-of-range values are left for Vocab to reject with a warning.
absl::StatusOr<std::optional<int32_t>> ReadId(const gguf::GgufFile& f, std::string_view key) {
  const gguf::Value* v = f.Find(key);
  if (v == nullptr) return std::optional<int32_t>();
  const std::optional<int64_t> i = v->as_i64();
  if (!i.has_value()) {
    if (v->as_u64().has_value()) return std::optional<int32_t>(-1);  // huge: invalid
    return absl::InvalidArgumentError(absl::StrCat(std::string(key), " is not an integer"));
  }
  if (*i < INT32_MIN || *i > INT32_MAX) return std::optional<int32_t>(-1);
  return std::optional<int32_t>(static_cast<int32_t>(*i));
}

absl::StatusOr<std::optional<bool>> ReadBool(const gguf::GgufFile& f, std::string_view key) {
  if (f.Find(key) == nullptr) return std::optional<bool>();
  absl::StatusOr<bool> b = f.GetBool(key);
  if (!b.ok()) return b.status();
  return std::optional<bool>(*b);
}

absl::StatusOr<std::string> ReadString(const gguf::GgufFile& f, std::string_view key) {
  if (f.Find(key) == nullptr) return std::string();
  absl::StatusOr<std::string_view> s = f.GetString(key);
  if (!s.ok()) return s.status();
  return std::string(*s);
}

}  // namespace

absl::StatusOr<Vocab> Vocab::FromGguf(const gguf::GgufFile& f) {
  VocabData d;
  if (f.Find("tokenizer.ggml.model") == nullptr) {
    return absl::InvalidArgumentError("GGUF file has no tokenizer (tokenizer.ggml.model missing)");
  }
#define LLMESH_ASSIGN(lhs, expr)            \
  do {                                      \
    auto _r = (expr);                       \
    if (!_r.ok()) return _r.status();       \
    lhs = std::move(*_r);                   \
  } while (0)
  LLMESH_ASSIGN(d.model, ReadString(f, "tokenizer.ggml.model"));
  LLMESH_ASSIGN(d.pre, ReadString(f, "tokenizer.ggml.pre"));
  LLMESH_ASSIGN(d.name, ReadString(f, "general.name"));
  LLMESH_ASSIGN(d.chat_template, ReadString(f, "tokenizer.chat_template"));

  absl::StatusOr<std::vector<std::string_view>> tokens = f.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  d.tokens.assign(tokens->begin(), tokens->end());
  if (f.Find("tokenizer.ggml.scores") != nullptr) {
    LLMESH_ASSIGN(d.scores, f.GetF32Array("tokenizer.ggml.scores"));
  }
  if (f.Find("tokenizer.ggml.token_type") != nullptr) {
    std::vector<int64_t> types;
    LLMESH_ASSIGN(types, f.GetIntArray("tokenizer.ggml.token_type"));
    d.token_types.reserve(types.size());
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] < 0 || types[i] > 6) {
        return absl::InvalidArgumentError(absl::StrCat("token ", i, " has invalid token_type ", types[i]));
      }
      d.token_types.push_back(static_cast<int32_t>(types[i]));
    }
  }
  if (f.Find("tokenizer.ggml.merges") != nullptr) {
    std::vector<std::string_view> merges;
    LLMESH_ASSIGN(merges, f.GetStringArray("tokenizer.ggml.merges"));
    d.merges.assign(merges.begin(), merges.end());
  }
  LLMESH_ASSIGN(d.bos, ReadId(f, "tokenizer.ggml.bos_token_id"));
  LLMESH_ASSIGN(d.eos, ReadId(f, "tokenizer.ggml.eos_token_id"));
  LLMESH_ASSIGN(d.eot, ReadId(f, "tokenizer.ggml.eot_token_id"));
  LLMESH_ASSIGN(d.unk, ReadId(f, "tokenizer.ggml.unknown_token_id"));
  LLMESH_ASSIGN(d.sep, ReadId(f, "tokenizer.ggml.seperator_token_id"));  // sic, the GGUF key
  LLMESH_ASSIGN(d.pad, ReadId(f, "tokenizer.ggml.padding_token_id"));
  LLMESH_ASSIGN(d.cls, ReadId(f, "tokenizer.ggml.cls_token_id"));
  LLMESH_ASSIGN(d.mask, ReadId(f, "tokenizer.ggml.mask_token_id"));
  LLMESH_ASSIGN(d.add_bos, ReadBool(f, "tokenizer.ggml.add_bos_token"));
  LLMESH_ASSIGN(d.add_eos, ReadBool(f, "tokenizer.ggml.add_eos_token"));
  LLMESH_ASSIGN(d.add_sep, ReadBool(f, "tokenizer.ggml.add_sep_token"));
  LLMESH_ASSIGN(d.add_space_prefix, ReadBool(f, "tokenizer.ggml.add_space_prefix"));
#undef LLMESH_ASSIGN
  return FromData(std::move(d));
}

}  // namespace llmesh::tokenizer
