#include "llmesh/engine/quant_mix.h"

#include <array>
#include <charconv>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace llmesh::engine {

using gguf::GgmlType;

namespace {

struct FileTypeEntry {
  std::string_view name;
  GgmlType type;
  MixSize size;
  uint32_t ftype;  // llama.h enum llama_ftype
};

constexpr std::array<FileTypeEntry, 22> kFileTypes = {{
    {"F32", GgmlType::kF32, MixSize::kDefault, 0},
    {"F16", GgmlType::kF16, MixSize::kDefault, 1},
    {"BF16", GgmlType::kBF16, MixSize::kDefault, 32},
    {"Q4_0", GgmlType::kQ4_0, MixSize::kDefault, 2},
    {"Q4_1", GgmlType::kQ4_1, MixSize::kDefault, 3},
    {"Q8_0", GgmlType::kQ8_0, MixSize::kDefault, 7},
    {"Q5_0", GgmlType::kQ5_0, MixSize::kDefault, 8},
    {"Q5_1", GgmlType::kQ5_1, MixSize::kDefault, 9},
    {"Q2_K", GgmlType::kQ2_K, MixSize::kDefault, 10},
    {"Q2_K_S", GgmlType::kQ2_K, MixSize::kS, 21},
    {"Q3_K_M", GgmlType::kQ3_K, MixSize::kDefault, 12},
    {"Q3_K_S", GgmlType::kQ3_K, MixSize::kS, 11},
    {"Q3_K_L", GgmlType::kQ3_K, MixSize::kL, 13},
    {"Q4_K_M", GgmlType::kQ4_K, MixSize::kDefault, 15},
    {"Q4_K_S", GgmlType::kQ4_K, MixSize::kS, 14},
    {"Q5_K_M", GgmlType::kQ5_K, MixSize::kDefault, 17},
    {"Q5_K_S", GgmlType::kQ5_K, MixSize::kS, 16},
    {"Q6_K", GgmlType::kQ6_K, MixSize::kDefault, 18},
    {"IQ4_NL", GgmlType::kIQ4_NL, MixSize::kDefault, 25},
    {"IQ4_XS", GgmlType::kIQ4_XS, MixSize::kDefault, 30},
    {"TQ1_0", GgmlType::kTQ1_0, MixSize::kDefault, 36},
    {"TQ2_0", GgmlType::kTQ2_0, MixSize::kDefault, 37},
}};

const FileTypeEntry* Find(GgmlType type, MixSize size) {
  for (const FileTypeEntry& e : kFileTypes) {
    if (e.type == type && e.size == size) return &e;
  }
  return nullptr;
}

// Which mix this is, by llama.cpp's names; bare K names are their _M mix.
enum class Ftype { kOther, kQ2_K, kQ2_K_S, kQ3_K_S, kQ3_K_M, kQ3_K_L, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M, kIQ4, kTQ };

Ftype Classify(const QuantMix& mix) {
  const bool s = mix.size == MixSize::kS, l = mix.size == MixSize::kL;
  switch (mix.type) {
    case GgmlType::kQ2_K: return s ? Ftype::kQ2_K_S : Ftype::kQ2_K;
    case GgmlType::kQ3_K: return s ? Ftype::kQ3_K_S : l ? Ftype::kQ3_K_L : Ftype::kQ3_K_M;
    case GgmlType::kQ4_K: return s ? Ftype::kQ4_K_S : Ftype::kQ4_K_M;
    case GgmlType::kQ5_K: return s ? Ftype::kQ5_K_S : Ftype::kQ5_K_M;
    case GgmlType::kIQ4_NL: case GgmlType::kIQ4_XS: return Ftype::kIQ4;
    case GgmlType::kTQ1_0: case GgmlType::kTQ2_0: return Ftype::kTQ;
    default: return Ftype::kOther;
  }
}

bool IsFloat(GgmlType t) { return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16; }

// The first and last eighth of the layers and every third one between.
bool UseMoreBits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// "blk.N." -> N, or -1.
int LayerOf(std::string_view name) {
  if (!name.starts_with("blk.")) return -1;
  int layer = -1;
  const char* first = name.data() + 4;
  auto [end, ec] = std::from_chars(first, name.data() + name.size(), layer);
  return ec == std::errc() && end != first ? layer : -1;
}

bool Contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// llama_tensor_get_type's per-tensor rules for the mixes this project
// writes (no importance matrix; Falcon's special cases left out).
GgmlType MixRules(Ftype f, const MixModel& m, std::string_view name, GgmlType t) {
  const int i = LayerOf(name), n = m.n_layer;
  const bool moe8 = m.n_expert == 8;
  if (Contains(name, "attn_v.weight")) {
    if (f == Ftype::kQ2_K) t = m.n_gqa >= 4 ? GgmlType::kQ4_K : GgmlType::kQ3_K;
    else if (f == Ftype::kQ2_K_S && m.n_gqa >= 4) t = GgmlType::kQ4_K;
    else if (f == Ftype::kQ3_K_M) t = i < 2 ? GgmlType::kQ5_K : GgmlType::kQ4_K;
    else if (f == Ftype::kQ3_K_L) t = GgmlType::kQ5_K;
    else if (f == Ftype::kIQ4 && m.n_gqa >= 4) t = GgmlType::kQ5_K;
    else if ((f == Ftype::kQ4_K_M || f == Ftype::kQ5_K_M) && UseMoreBits(i, n)) t = GgmlType::kQ6_K;
    else if (f == Ftype::kQ4_K_S && i < 4) t = GgmlType::kQ5_K;
    if (moe8) t = GgmlType::kQ8_0;
  } else if (Contains(name, "attn_k.weight")) {
    if (moe8) t = GgmlType::kQ8_0;
  } else if (Contains(name, "ffn_down")) {
    if (f == Ftype::kQ2_K) t = GgmlType::kQ3_K;
    else if (f == Ftype::kQ2_K_S) { if (i < n / 8) t = GgmlType::kQ4_K; }
    else if (f == Ftype::kQ3_K_M) t = i < n / 16 ? GgmlType::kQ5_K : GgmlType::kQ4_K;
    else if (f == Ftype::kQ3_K_L) t = GgmlType::kQ5_K;
    else if (f == Ftype::kQ4_K_M) { if (UseMoreBits(i, n)) t = GgmlType::kQ6_K; }
    else if (f == Ftype::kIQ4 && i < n / 8) t = GgmlType::kQ5_K;
    else if (f == Ftype::kQ5_K_M && UseMoreBits(i, n)) t = GgmlType::kQ6_K;
    else if (f == Ftype::kQ4_K_S && i < n / 8) t = GgmlType::kQ5_K;
  } else if (Contains(name, "attn_output.weight")) {
    if (moe8) {
      if (f == Ftype::kQ2_K || f == Ftype::kQ3_K_S || f == Ftype::kQ3_K_M || f == Ftype::kIQ4 ||
          f == Ftype::kQ4_K_S || f == Ftype::kQ4_K_M) {
        t = GgmlType::kQ5_K;
      }
    } else if (f == Ftype::kQ2_K) t = GgmlType::kQ3_K;
    else if (f == Ftype::kQ3_K_M) t = GgmlType::kQ4_K;
    else if (f == Ftype::kQ3_K_L) t = GgmlType::kQ5_K;
  } else if (Contains(name, "attn_qkv.weight")) {
    if (f == Ftype::kQ3_K_M || f == Ftype::kQ3_K_L) t = GgmlType::kQ4_K;
    else if (f == Ftype::kQ4_K_M) t = GgmlType::kQ5_K;
    else if (f == Ftype::kQ5_K_M) t = GgmlType::kQ6_K;
  }
  return t;
}

int64_t BlockSize(GgmlType t) { return gguf::ggml_type_traits(t)->block_size; }

}  // namespace

absl::StatusOr<QuantMix> QuantMix::Parse(std::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(std::string(name));
  // The bare K names ("Q4_K") are llama-quantize's aliases of their _M mix.
  for (const FileTypeEntry& e : kFileTypes) {
    const bool bare_k = e.name.size() == 6 && e.name.ends_with("_K_M");
    if (upper == e.name || (bare_k && upper == e.name.substr(0, 4))) return QuantMix{e.type, e.size};
  }
  std::string known;
  for (const FileTypeEntry& e : kFileTypes) absl::StrAppend(&known, known.empty() ? "" : " ", std::string(e.name));
  return absl::InvalidArgumentError(absl::StrCat("unknown type '", std::string(name), "' (one of ", known, ")"));
}

std::string QuantMix::Name() const {
  const FileTypeEntry* e = Find(type, size);
  return e ? std::string(e->name) : std::string(gguf::ggml_type_name(type));
}

uint32_t QuantMix::FileType() const {
  const FileTypeEntry* e = Find(type, size);
  return e ? e->ftype : 0;
}

bool QuantMix::quantized() const { return !IsFloat(type); }

GgmlType ChooseTensorType(const QuantMix& mix, const MixModel& model, std::string_view name, int n_dims,
                          int64_t n_in, bool pure) {
  if (n_dims < 2) return GgmlType::kF32;
  GgmlType t = mix.type;
  if (!pure && mix.quantized()) {
    const Ftype f = Classify(mix);
    const bool lm_head = name == "output.weight" || (model.tied_output && name == "token_embd.weight");
    if (lm_head) {
      if (n_in % BlockSize(t) != 0) t = GgmlType::kQ8_0;
      else if (t != GgmlType::kQ8_0) t = GgmlType::kQ6_K;
    } else if (name == "token_embd.weight") {
      if (f == Ftype::kTQ) t = GgmlType::kQ4_K;
    } else {
      t = MixRules(f, model, name, t);
    }
  }
  if (n_in % BlockSize(t) != 0) {
    switch (t) {
      case GgmlType::kTQ1_0: case GgmlType::kTQ2_0: t = GgmlType::kQ4_0; break;
      case GgmlType::kQ2_K: case GgmlType::kQ3_K: case GgmlType::kIQ4_XS: t = GgmlType::kIQ4_NL; break;
      case GgmlType::kQ4_K: t = GgmlType::kQ5_0; break;
      case GgmlType::kQ5_K: t = GgmlType::kQ5_1; break;
      case GgmlType::kQ6_K: t = GgmlType::kQ8_0; break;
      default: break;
    }
    if (n_in % BlockSize(t) != 0) t = GgmlType::kF16;
  }
  return t;
}

}  // namespace llmesh::engine
