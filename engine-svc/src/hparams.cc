#include "llmesh/engine/hparams.h"

#include <cmath>
#include <numbers>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "llmesh/engine/family.h"

namespace llmesh::engine {
namespace {

// Reads `{arch}.{suffix}` through the typed getter `get`; a missing key is
// an error naming the key (the getter's own NOT_FOUND is too generic for a
// user looking at a broken file).
template <typename T, typename Getter>
absl::StatusOr<T> Required(const gguf::GgufFile& f, const std::string& key, Getter get) {
  auto v = (f.*get)(key);
  if (absl::IsNotFound(v.status())) {
    return absl::InvalidArgumentError(absl::StrCat("missing required metadata key '", key, "'"));
  }
  if (!v.ok()) return v.status();
  return static_cast<T>(*v);
}

template <typename T, typename Getter>
absl::StatusOr<T> Optional(const gguf::GgufFile& f, const std::string& key, Getter get, T dflt) {
  auto v = (f.*get)(key);
  if (absl::IsNotFound(v.status())) return dflt;
  if (!v.ok()) return v.status();
  return static_cast<T>(*v);
}

absl::Status CheckRange(const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return absl::InvalidArgumentError(
        absl::StrFormat("metadata key '%s' = %d out of range [%d, %d]", key, v, lo, hi));
  }
  return absl::OkStatus();
}

absl::Status CheckPositiveFinite(const std::string& key, float v) {
  if (!std::isfinite(v) || v <= 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrFormat("metadata key '%s' = %g must be positive and finite", key, v));
  }
  return absl::OkStatus();
}

// The optional keys of the newer families, read for every architecture (a
// key a family does not use is absent from its files).
absl::Status ReadExtendedParams(const gguf::GgufFile& f, const std::string& a, ModelParams& hp) {
  using G = gguf::GgufFile;
  auto key = [&](std::string_view suffix) { return absl::StrCat(a, ".", std::string(suffix)); };
  struct FloatKey {
    const char* suffix;
    float* dst;
    bool positive;  // must be > 0 when present
  };
  for (const FloatKey& k : {FloatKey{"rope.scaling.yarn_beta_fast", &hp.yarn_beta_fast, true},
                            FloatKey{"rope.scaling.yarn_beta_slow", &hp.yarn_beta_slow, true},
                            FloatKey{"rope.scaling.yarn_log_multiplier", &hp.rope_yarn_log_mul, false},
                            FloatKey{"rope.scaling.attn_factor", &hp.rope_attn_factor, true},
                            FloatKey{"attention.scale", &hp.f_attention_scale, true},
                            FloatKey{"attn_logit_softcapping", &hp.f_attn_softcap, true},
                            FloatKey{"final_logit_softcapping", &hp.f_final_softcap, true},
                            FloatKey{"embedding_scale", &hp.f_embedding_scale, true},
                            FloatKey{"residual_scale", &hp.f_residual_scale, true},
                            FloatKey{"logit_scale", &hp.f_logit_scale, true},
                            FloatKey{"attention.temperature_scale", &hp.f_attn_temp_scale, false}}) {
    auto v = Optional<float>(f, key(k.suffix), &G::GetF32, *k.dst);
    if (!v.ok()) return v.status();
    const bool present = f.Find(key(k.suffix)) != nullptr;
    if (present && (!std::isfinite(*v) || (k.positive && *v <= 0.0f))) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "metadata key '%s' = %g must be %s", key(k.suffix), *v, k.positive ? "positive and finite" : "finite"));
    }
    *k.dst = *v;
  }
  struct IntKey {
    const char* suffix;
    int64_t* dst;
    int64_t dflt, lo;
  };
  for (const IntKey& k : {IntKey{"rope.scaling.original_context_length", &hp.n_ctx_orig_yarn, hp.n_ctx_train, 1},
                          IntKey{"attention.temperature_length", &hp.n_attn_temp_floor_scale, 0, 0},
                          IntKey{"attention.sliding_window", &hp.n_swa, 0, 0}}) {
    auto v = Optional<int64_t>(f, key(k.suffix), &G::GetU64, k.dflt);
    if (!v.ok()) return v.status();
    if (auto s = CheckRange(key(k.suffix), *v, k.lo, kMaxCtx); !s.ok()) return s;
    *k.dst = *v;
  }
  hp.rope_freq_base_swa = hp.rope_freq_base;
  hp.rope_freq_scale_swa = hp.rope_freq_scale;
  {
    auto v = Optional<float>(f, key("rope.freq_base_swa"), &G::GetF32, hp.rope_freq_base_swa);
    if (!v.ok()) return v.status();
    if (auto s = CheckPositiveFinite(key("rope.freq_base_swa"), *v); !s.ok()) return s;
    hp.rope_freq_base_swa = *v;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> ReadSwaPeriod(const gguf::GgufFile& f, const std::string& arch, int64_t dflt) {
  const std::string k = absl::StrCat(arch, ".attention.sliding_window_pattern");
  auto v = f.GetU64(k);
  if (absl::IsNotFound(v.status())) return dflt;
  if (!v.ok()) return v.status();
  if (*v > static_cast<uint64_t>(kMaxLayers)) {
    return absl::InvalidArgumentError(absl::StrFormat("metadata key '%s' = %d out of range [0, %d]", k, *v, kMaxLayers));
  }
  return static_cast<int64_t>(*v);
}

std::string_view ArchName(Arch arch) { return FamilyOf(arch).name; }

std::vector<uint8_t> SwaPattern(int64_t n_layer, int64_t pattern) {
  std::vector<uint8_t> v(static_cast<size_t>(n_layer));
  for (int64_t il = 0; il < n_layer; ++il) v[il] = pattern == 0 || il % pattern < pattern - 1;
  return v;
}

std::string_view RopeScalingName(RopeScaling s) {
  switch (s) {
    case RopeScaling::kNone:
      return "none";
    case RopeScaling::kLinear:
      return "linear";
    case RopeScaling::kLlama3:
      return "llama3";
    case RopeScaling::kYarn:
      return "yarn";
  }
  return "?";
}

std::vector<float> Llama3RopeFreqFactors(const ModelParams& hp) {
  // Mirrors convert_hf_to_gguf.py LlamaModel.generate_extra_tensors: long
  // wavelengths are slowed by `factor`, short ones kept, a smooth blend
  // between. The result divides theta per dimension pair, like llama.cpp's
  // rope_freqs tensor.
  const double base = hp.rope_freq_base;
  const int64_t dim = hp.n_rot;
  const double factor = hp.rope_scaling_factor;
  const double lo = hp.rope_scaling_low_freq_factor;
  const double hi = hp.rope_scaling_high_freq_factor;
  const double old_ctx = static_cast<double>(hp.rope_scaling_orig_ctx);
  const double low_freq_wavelen = old_ctx / lo;
  const double high_freq_wavelen = old_ctx / hi;
  std::vector<float> out;
  out.reserve(dim / 2);
  for (int64_t i = 0; i < dim; i += 2) {
    // float32 like torch in the converter, so factors match bit-for-bit-ish.
    const float freq =
        1.0f / std::pow(static_cast<float>(base), static_cast<float>(i) / static_cast<float>(dim));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    if (wavelen < high_freq_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
      out.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / factor + smooth)));
    }
  }
  return out;
}

absl::StatusOr<ModelParams> ReadModelParams(const gguf::GgufFile& f) {
  using G = gguf::GgufFile;
  ModelParams hp;
  auto arch_name = f.GetString("general.architecture");
  if (absl::IsNotFound(arch_name.status())) {
    return absl::InvalidArgumentError("missing required metadata key 'general.architecture'");
  }
  if (!arch_name.ok()) return arch_name.status();
  const Family* family = FindFamily(*arch_name);
  if (family == nullptr) {
    std::string names;
    for (std::string_view n : FamilyNames()) absl::StrAppend(&names, names.empty() ? "" : ", ", std::string(n));
    return absl::InvalidArgumentError(
        absl::StrCat("unknown architecture '", std::string(*arch_name),
                     "' (general.architecture); supported: ", names,
                     "; bert files are embedding models (BertModel)"));
  }
  hp.arch = family->arch;
  hp.rope_type = family->rope_type;
  hp.has_qkv_bias = family->qkv_bias;
  if (auto n = f.GetString("general.name"); n.ok()) hp.name = std::string(*n);

  const std::string a(*arch_name);
  auto key = [&](std::string_view suffix) { return absl::StrCat(a, ".", std::string(suffix)); };

  // Required for both architectures, as llama.cpp's loader requires them.
  // block_count is checked first so a huge count fails before anything else.
  {
    auto v = Required<int64_t>(f, key("block_count"), &G::GetU64);
    if (!v.ok()) return v.status();
    hp.n_layer = *v;
    if (auto s = CheckRange(key("block_count"), hp.n_layer, 1, kMaxLayers); !s.ok()) return s;
  }
  struct IntKey {
    const char* suffix;
    int64_t* dst;
    int64_t lo, hi;
  };
  for (const IntKey& k : {IntKey{"context_length", &hp.n_ctx_train, 1, kMaxCtx},
                          IntKey{"embedding_length", &hp.n_embd, 1, kMaxEmbd},
                          IntKey{"feed_forward_length", &hp.n_ff, 1, kMaxFf},
                          IntKey{"attention.head_count", &hp.n_head, 1, kMaxHeads}}) {
    auto v = Required<int64_t>(f, key(k.suffix), &G::GetU64);
    if (!v.ok()) return v.status();
    if (auto s = CheckRange(key(k.suffix), *v, k.lo, k.hi); !s.ok()) return s;
    *k.dst = *v;
  }
  {
    auto v = Required<float>(f, key("attention.layer_norm_rms_epsilon"), &G::GetF32);
    if (!v.ok()) return v.status();
    hp.f_norm_rms_eps = *v;
    if (auto s = CheckPositiveFinite(key("attention.layer_norm_rms_epsilon"), *v); !s.ok())
      return s;
  }

  // Mixtral-style files are `llama` too, but their FFN tensors differ.
  if (auto e = f.GetU64(key("expert_count")); e.ok() && *e > 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mixture-of-experts models ('%s' = %d) are not supported", key("expert_count"), *e));
  }

  // Optional, with llama.cpp's defaults.
  {
    auto v = Optional<int64_t>(f, key("attention.head_count_kv"), &G::GetU64, hp.n_head);
    if (!v.ok()) return v.status();
    hp.n_head_kv = *v;
    if (auto s = CheckRange(key("attention.head_count_kv"), hp.n_head_kv, 1, hp.n_head); !s.ok()) {
      return s;
    }
    if (hp.n_head % hp.n_head_kv != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("'%s' = %d does not divide '%s' = %d", key("attention.head_count_kv"),
                          hp.n_head_kv, key("attention.head_count"), hp.n_head));
    }
  }
  {
    const int64_t dflt = hp.n_embd % hp.n_head == 0 ? hp.n_embd / hp.n_head : 0;
    auto k = Optional<int64_t>(f, key("attention.key_length"), &G::GetU64, dflt);
    if (!k.ok()) return k.status();
    if (*k == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "'%s' = %d is not a multiple of '%s' = %d and '%s' is absent", key("embedding_length"),
          hp.n_embd, key("attention.head_count"), hp.n_head, key("attention.key_length")));
    }
    hp.n_embd_head_k = *k;
    auto v = Optional<int64_t>(f, key("attention.value_length"), &G::GetU64, hp.n_embd_head_k);
    if (!v.ok()) return v.status();
    hp.n_embd_head_v = *v;
    if (auto s = CheckRange(key("attention.key_length"), hp.n_embd_head_k, 2, 4096); !s.ok()) {
      return s;
    }
    if (auto s = CheckRange(key("attention.value_length"), hp.n_embd_head_v, 1, 4096); !s.ok()) {
      return s;
    }
  }
  {
    auto v = Optional<int64_t>(f, key("rope.dimension_count"), &G::GetU64, hp.n_embd_head_k);
    if (!v.ok()) return v.status();
    hp.n_rot = *v;
    if (auto s = CheckRange(key("rope.dimension_count"), hp.n_rot, 2, hp.n_embd_head_k); !s.ok()) {
      return s;
    }
    if (hp.n_rot % 2 != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("'%s' = %d must be even", key("rope.dimension_count"), hp.n_rot));
    }
  }
  {
    auto v = Optional<float>(f, key("rope.freq_base"), &G::GetF32, 10000.0f);
    if (!v.ok()) return v.status();
    hp.rope_freq_base = *v;
    if (auto s = CheckPositiveFinite(key("rope.freq_base"), *v); !s.ok()) return s;
  }

  // RoPE scaling. The old `rope.scale_linear` key is still honoured.
  {
    auto type = f.GetString(key("rope.scaling.type"));
    std::string type_name = "none";
    if (type.ok()) {
      type_name = absl::AsciiStrToLower(std::string(*type));
    } else if (!absl::IsNotFound(type.status())) {
      return type.status();
    }
    auto factor = Optional<float>(f, key("rope.scaling.factor"), &G::GetF32, 0.0f);
    if (!factor.ok()) return factor.status();
    auto old_linear = Optional<float>(f, key("rope.scale_linear"), &G::GetF32, 0.0f);
    if (!old_linear.ok()) return old_linear.status();

    if (type_name == "none") {
      if (*old_linear != 0.0f && *old_linear != 1.0f) {
        if (auto s = CheckPositiveFinite(key("rope.scale_linear"), *old_linear); !s.ok()) return s;
        hp.rope_scaling = RopeScaling::kLinear;
        hp.rope_freq_scale = 1.0f / *old_linear;
      }
    } else if (type_name == "linear") {
      const float fct = *factor != 0.0f ? *factor : *old_linear;
      if (auto s = CheckPositiveFinite(key("rope.scaling.factor"), fct); !s.ok()) return s;
      hp.rope_scaling = RopeScaling::kLinear;
      hp.rope_freq_scale = 1.0f / fct;
    } else if (type_name == "llama3") {
      hp.rope_scaling = RopeScaling::kLlama3;
      hp.rope_scaling_factor = *factor != 0.0f ? *factor : 8.0f;
      if (auto s = CheckPositiveFinite(key("rope.scaling.factor"), hp.rope_scaling_factor);
          !s.ok()) {
        return s;
      }
      auto lo = Optional<float>(f, key("rope.scaling.low_freq_factor"), &G::GetF32, 1.0f);
      auto hi = Optional<float>(f, key("rope.scaling.high_freq_factor"), &G::GetF32, 4.0f);
      auto oc = Optional<int64_t>(f, key("rope.scaling.original_context_length"), &G::GetU64, 8192);
      if (!lo.ok()) return lo.status();
      if (!hi.ok()) return hi.status();
      if (!oc.ok()) return oc.status();
      if (auto s = CheckPositiveFinite(key("rope.scaling.low_freq_factor"), *lo); !s.ok()) return s;
      if (auto s = CheckPositiveFinite(key("rope.scaling.high_freq_factor"), *hi); !s.ok()) {
        return s;
      }
      if (!(*hi > *lo)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("'%s' = %g must exceed '%s' = %g", key("rope.scaling.high_freq_factor"),
                            *hi, key("rope.scaling.low_freq_factor"), *lo));
      }
      if (auto s = CheckRange(key("rope.scaling.original_context_length"), *oc, 1, kMaxCtx);
          !s.ok()) {
        return s;
      }
      hp.rope_scaling_low_freq_factor = *lo;
      hp.rope_scaling_high_freq_factor = *hi;
      hp.rope_scaling_orig_ctx = *oc;
      hp.rope_freq_factors = Llama3RopeFreqFactors(hp);
    } else if (type_name == "longrope") {
      // LongRoPE's divisors are the rope_factors_{short,long}.weight tensors
      // (model.cc); nothing to read here.
    } else if (type_name == "yarn") {
      if (auto s = CheckPositiveFinite(key("rope.scaling.factor"), *factor); !s.ok()) return s;
      hp.rope_scaling = RopeScaling::kYarn;
      hp.rope_freq_scale = 1.0f / *factor;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unsupported '", key("rope.scaling.type"),
                                                     "' = '", type_name,
                                                     "' (supported: none, linear, llama3, yarn, longrope)"));
    }
  }
  if (auto s = ReadExtendedParams(f, a, hp); !s.ok()) return s;
  if (family->read_params != nullptr) {
    if (auto s = family->read_params(f, a, hp); !s.ok()) return s;
  }
  if (!hp.swa_layers.empty() && hp.n_swa <= 0) hp.swa_layers.clear();
  // The query temperature divides positions by its length: never by 0.
  if (hp.f_attn_temp_scale != 0.0f && hp.n_attn_temp_floor_scale <= 0) {
    hp.n_attn_temp_floor_scale = hp.n_ctx_orig_yarn;
  }
  return hp;
}

std::string DescribeModelParams(const ModelParams& hp) {
  std::string s;
  absl::StrAppendFormat(&s, "architecture      %s\n", ArchName(hp.arch));
  if (!hp.name.empty()) absl::StrAppendFormat(&s, "name              %s\n", hp.name);
  absl::StrAppendFormat(&s, "n_vocab           %d\n", hp.n_vocab);
  absl::StrAppendFormat(&s, "n_ctx_train       %d\n", hp.n_ctx_train);
  absl::StrAppendFormat(&s, "n_embd            %d\n", hp.n_embd);
  absl::StrAppendFormat(&s, "n_layer           %d\n", hp.n_layer);
  absl::StrAppendFormat(&s, "n_head            %d\n", hp.n_head);
  absl::StrAppendFormat(&s, "n_head_kv         %d\n", hp.n_head_kv);
  absl::StrAppendFormat(&s, "n_embd_head_k     %d\n", hp.n_embd_head_k);
  absl::StrAppendFormat(&s, "n_embd_head_v     %d\n", hp.n_embd_head_v);
  absl::StrAppendFormat(&s, "n_ff              %d\n", hp.n_ff);
  absl::StrAppendFormat(&s, "n_rot             %d\n", hp.n_rot);
  absl::StrAppendFormat(&s, "rms_norm_eps      %g\n", hp.f_norm_rms_eps);
  absl::StrAppendFormat(&s, "rope_type         %s\n",
                        hp.rope_type == RopeType::kNorm ? "norm" : "neox");
  absl::StrAppendFormat(&s, "rope_freq_base    %g\n", hp.rope_freq_base);
  absl::StrAppendFormat(&s, "rope_scaling      %s", RopeScalingName(hp.rope_scaling));
  if (hp.rope_scaling == RopeScaling::kLinear) {
    absl::StrAppendFormat(&s, " (freq_scale %g)", hp.rope_freq_scale);
  } else if (hp.rope_scaling == RopeScaling::kLlama3) {
    absl::StrAppendFormat(&s, " (factor %g, low %g, high %g, orig_ctx %d)", hp.rope_scaling_factor,
                          hp.rope_scaling_low_freq_factor, hp.rope_scaling_high_freq_factor,
                          hp.rope_scaling_orig_ctx);
  }
  s += "\n";
  if (hp.rope_scaling == RopeScaling::kYarn) {
    absl::StrAppendFormat(&s, "yarn              orig_ctx %d, beta_fast %g, beta_slow %g, log_mul %g\n",
                          hp.n_ctx_orig_yarn, hp.yarn_beta_fast, hp.yarn_beta_slow, hp.rope_yarn_log_mul);
  }
  if (hp.rope_attn_factor != 1.0f) absl::StrAppendFormat(&s, "rope_attn_factor  %g\n", hp.rope_attn_factor);
  absl::StrAppendFormat(&s, "qkv_bias          %s\n", hp.has_qkv_bias ? "yes" : "no");
  absl::StrAppendFormat(&s, "family            %s\n", FamilyOf(hp.arch).example);
  absl::StrAppendFormat(&s, "features          %s\n", DescribeFeatures(hp));
  return s;
}

}  // namespace llmesh::engine
