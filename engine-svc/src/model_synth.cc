#include "llmesh/engine/model_synth.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "llmesh/engine/family.h"
#include "llmesh/gguf/gguf_writer.h"
#include "spdlog/spdlog.h"
#include "synth_gguf.h"
#include "synth_random.h"

namespace llmesh::engine {
namespace {

using gguf::GgmlType;
using internal::NormalRows;

// The published configs (config.json) of each model.
const SynthShape kShapes[] = {
    {.name = "tinyllama-1.1b",
     .arch = Arch::kLlama,
     .n_embd = 2048,
     .n_layer = 22,
     .n_head = 32,
     .n_head_kv = 4,
     .n_ff = 5632,
     .n_ctx = 2048},
    {.name = "llama3.2-1b",
     .arch = Arch::kLlama,
     .n_embd = 2048,
     .n_layer = 16,
     .n_head = 32,
     .n_head_kv = 8,
     .n_ff = 8192,
     .n_ctx = 131072,
     .rope_freq_base = 500000.0f,
     .tied_output = true,
     .rope_scaling_factor = 32.0f},
    {.name = "llama2-7b",
     .arch = Arch::kLlama,
     .n_embd = 4096,
     .n_layer = 32,
     .n_head = 32,
     .n_head_kv = 32,
     .n_ff = 11008,
     .n_ctx = 4096},
    {.name = "qwen2-0.5b",
     .arch = Arch::kQwen2,
     .n_embd = 896,
     .n_layer = 24,
     .n_head = 14,
     .n_head_kv = 2,
     .n_ff = 4864,
     .n_ctx = 32768,
     .rope_freq_base = 1000000.0f,
     .rms_eps = 1e-6f,
     .tied_output = true},
    {.name = "smollm-135m",
     .arch = Arch::kLlama,
     .n_embd = 576,
     .n_layer = 30,
     .n_head = 9,
     .n_head_kv = 3,
     .n_ff = 1536,
     .n_ctx = 2048,
     .tied_output = true},
    {.name = "qwen3-0.6b", .arch = Arch::kQwen3, .n_embd = 1024, .n_layer = 28, .n_head = 16,
     .n_head_kv = 8, .n_ff = 3072, .n_ctx = 40960, .rope_freq_base = 1000000.0f, .rms_eps = 1e-6f,
     .tied_output = true, .head_dim = 128, .n_vocab = 151936},
    {.name = "qwen3-1.7b", .arch = Arch::kQwen3, .n_embd = 2048, .n_layer = 28, .n_head = 16,
     .n_head_kv = 8, .n_ff = 6144, .n_ctx = 40960, .rope_freq_base = 1000000.0f, .rms_eps = 1e-6f,
     .tied_output = true, .head_dim = 128, .n_vocab = 151936},
    {.name = "gemma2-2b", .arch = Arch::kGemma2, .n_embd = 2304, .n_layer = 26, .n_head = 8,
     .n_head_kv = 4, .n_ff = 9216, .n_ctx = 8192, .rms_eps = 1e-6f, .tied_output = true,
     .head_dim = 256, .n_swa = 4096, .attn_softcap = 50.0f, .final_softcap = 30.0f, .n_vocab = 256000},
    {.name = "gemma3-1b", .arch = Arch::kGemma3, .n_embd = 1152, .n_layer = 26, .n_head = 4,
     .n_head_kv = 1, .n_ff = 6912, .n_ctx = 32768, .rope_freq_base = 1000000.0f, .rms_eps = 1e-6f,
     .tied_output = true, .head_dim = 256, .n_swa = 512, .swa_pattern = 6,
     .rope_freq_base_swa = 10000.0f, .n_vocab = 262144},
    {.name = "phi3.5-mini", .arch = Arch::kPhi3, .n_embd = 3072, .n_layer = 32, .n_head = 32,
     .n_head_kv = 32, .n_ff = 8192, .n_ctx = 131072, .longrope_orig_ctx = 4096, .n_vocab = 32064},
    {.name = "smollm3-3b", .arch = Arch::kSmolLM3, .n_embd = 2048, .n_layer = 36, .n_head = 16,
     .n_head_kv = 4, .n_ff = 11008, .n_ctx = 65536, .rope_freq_base = 5000000.0f, .rms_eps = 1e-6f,
     .tied_output = true, .n_vocab = 128256},
    {.name = "olmo2-1b", .arch = Arch::kOlmo2, .n_embd = 2048, .n_layer = 16, .n_head = 16,
     .n_head_kv = 16, .n_ff = 8192, .n_ctx = 4096, .rope_freq_base = 500000.0f, .rms_eps = 1e-6f, .n_vocab = 100352},
    {.name = "granite3-2b", .arch = Arch::kGranite, .n_embd = 2048, .n_layer = 40, .n_head = 32,
     .n_head_kv = 8, .n_ff = 8192, .n_ctx = 4096, .tied_output = true, .embedding_scale = 12.0f,
     .residual_scale = 0.22f, .attention_scale = 0.015625f, .logit_scale = 8.0f, .n_vocab = 49155},
    {.name = "exaone4-1.2b", .arch = Arch::kExaone4, .n_embd = 2048, .n_layer = 30, .n_head = 32,
     .n_head_kv = 8, .n_ff = 4096, .n_ctx = 65536, .rope_freq_base = 1000000.0f,
     .tied_output = true, .n_vocab = 102400},
    // BitNet b1.58 2B4T (Llama 3 vocabulary); its matrices are ternary.
    {.name = "bitnet-2b", .arch = Arch::kBitnet, .n_embd = 2560, .n_layer = 30, .n_head = 20,
     .n_head_kv = 5, .n_ff = 6912, .n_ctx = 4096, .rope_freq_base = 500000.0f, .tied_output = true,
     .n_vocab = 128256},
};

// BitNet's per-tensor absmean scale of N(0, 0.02) weights, 0.02 * sqrt(2/pi),
// rounded to a value F16 holds exactly so TQ1_0/TQ2_0 store it losslessly.
constexpr float kTernaryScale = 0.015960693359375f;

// {-1, 0, 1} * kTernaryScale: the rows of make_row rounded as BitNet's
// quantization-aware training leaves its weights.
RowFn TernaryRows(RowFn make_row, int64_t n_in) {
  return [make_row = std::move(make_row), n_in](int64_t r, float* out) {
    if (absl::Status s = make_row(r, out); !s.ok()) return s;
    for (int64_t i = 0; i < n_in; ++i) {
      out[i] = std::clamp(std::round(out[i] / kTernaryScale), -1.0f, 1.0f) * kTernaryScale;
    }
    return absl::OkStatus();
  };
}

struct SynthTensor {
  std::string name;
  std::vector<int64_t> dims;  // ne order
  bool ones = false;          // norm weights
};

}  // namespace

absl::StatusOr<SynthShape> SynthShapeByName(std::string_view name) {
  return internal::ShapeByName<SynthShape>(kShapes, name, "shape");
}

std::vector<std::string> SynthShapeNames() { return internal::ShapeNames<SynthShape>(kShapes); }

absl::Status SynthesizeModel(const SynthOptions& opts, const std::string& out_path) {
  const SynthShape& sh = opts.shape;
  const Arch arch = opts.arch.value_or(sh.arch);
  const std::string a(ArchName(arch));
  if (sh.n_embd <= 0 || sh.n_layer <= 0 || sh.n_head <= 0 || sh.n_head_kv <= 0 || sh.n_ff <= 0 ||
      (sh.head_dim == 0 && sh.n_embd % sh.n_head != 0) || sh.n_head % sh.n_head_kv != 0 ||
      sh.n_layer > kMaxLayers) {
    return absl::InvalidArgumentError(absl::StrCat("inconsistent synth shape '", sh.name, "'"));
  }
  if (auto s = internal::CheckSynthType(opts.type); !s.ok()) return s;
  const Family& fam = FamilyOf(arch);
  const int64_t head_dim = sh.head_dim > 0 ? sh.head_dim : sh.n_embd / sh.n_head;
  const int64_t n_q = sh.n_head * head_dim;
  const int64_t n_kv = sh.n_head_kv * head_dim;

  gguf::GgufWriter w;
  const QuantMix mix{opts.type, opts.size};
  internal::SetGeneralKeys(w, a, absl::StrCat("synth ", sh.name), mix);
  w.SetU32(a + ".context_length", static_cast<uint32_t>(sh.n_ctx));
  w.SetU32(a + ".embedding_length", static_cast<uint32_t>(sh.n_embd));
  w.SetU32(a + ".block_count", static_cast<uint32_t>(sh.n_layer));
  w.SetU32(a + ".feed_forward_length", static_cast<uint32_t>(sh.n_ff));
  w.SetU32(a + ".attention.head_count", static_cast<uint32_t>(sh.n_head));
  w.SetU32(a + ".attention.head_count_kv", static_cast<uint32_t>(sh.n_head_kv));
  w.SetU32(a + ".rope.dimension_count", static_cast<uint32_t>(head_dim));
  if (sh.head_dim > 0) {
    w.SetU32(a + ".attention.key_length", static_cast<uint32_t>(head_dim));
    w.SetU32(a + ".attention.value_length", static_cast<uint32_t>(head_dim));
  }
  if (sh.n_swa > 0) w.SetU32(a + ".attention.sliding_window", static_cast<uint32_t>(sh.n_swa));
  if (sh.swa_pattern > 0) w.SetU32(a + ".attention.sliding_window_pattern", static_cast<uint32_t>(sh.swa_pattern));
  if (sh.rope_freq_base_swa > 0) w.SetF32(a + ".rope.freq_base_swa", sh.rope_freq_base_swa);
  for (const auto& [key, v] : {std::pair{"attn_logit_softcapping", sh.attn_softcap},
                               std::pair{"final_logit_softcapping", sh.final_softcap},
                               std::pair{"embedding_scale", sh.embedding_scale},
                               std::pair{"residual_scale", sh.residual_scale},
                               std::pair{"attention.scale", sh.attention_scale},
                               std::pair{"logit_scale", sh.logit_scale}}) {
    if (v > 0) w.SetF32(a + "." + key, v);
  }
  if (sh.longrope_orig_ctx > 0) {
    w.SetString(a + ".rope.scaling.type", "longrope");
    w.SetU32(a + ".rope.scaling.original_context_length", static_cast<uint32_t>(sh.longrope_orig_ctx));
    w.SetF32(a + ".rope.scaling.attn_factor",
             std::sqrt(1.0f + std::log(static_cast<float>(sh.n_ctx) / sh.longrope_orig_ctx) /
                                  std::log(static_cast<float>(sh.longrope_orig_ctx))));
  }
  w.SetF32(a + ".rope.freq_base", sh.rope_freq_base);
  w.SetF32(a + ".attention.layer_norm_rms_epsilon", sh.rms_eps);
  if (sh.rope_scaling_factor > 0.0f) {
    w.SetString(a + ".rope.scaling.type", "llama3");
    w.SetF32(a + ".rope.scaling.factor", sh.rope_scaling_factor);
    w.SetF32(a + ".rope.scaling.low_freq_factor", sh.rope_low_freq_factor);
    w.SetF32(a + ".rope.scaling.high_freq_factor", sh.rope_high_freq_factor);
    w.SetU32(a + ".rope.scaling.original_context_length", static_cast<uint32_t>(sh.rope_orig_ctx));
  }

  int64_t n_vocab = opts.n_vocab;
  if (opts.vocab != nullptr) {
    auto toks = opts.vocab->GetStringArray("tokenizer.ggml.tokens");
    if (!toks.ok()) return toks.status();
    n_vocab = std::max(static_cast<int64_t>(toks->size()), sh.n_vocab);
    if (auto s = internal::CopyTokenizerKeys(*opts.vocab, w, n_vocab); !s.ok()) return s;
  }
  if (n_vocab <= 0) return absl::InvalidArgumentError("synth needs a vocabulary or n_vocab");
  w.SetU32(a + ".vocab_size", static_cast<uint32_t>(n_vocab));

  // Tensors in convert_hf_to_gguf's order.
  std::vector<SynthTensor> ts;
  ts.push_back({"token_embd.weight", {sh.n_embd, n_vocab}});
  ModelParams rope_hp;  // only what Llama3RopeFreqFactors reads
  std::vector<float> rope_factors;
  if (sh.rope_scaling_factor > 0.0f) {
    rope_hp.rope_freq_base = sh.rope_freq_base;
    rope_hp.n_rot = head_dim;
    rope_hp.rope_scaling_factor = sh.rope_scaling_factor;
    rope_hp.rope_scaling_low_freq_factor = sh.rope_low_freq_factor;
    rope_hp.rope_scaling_high_freq_factor = sh.rope_high_freq_factor;
    rope_hp.rope_scaling_orig_ctx = sh.rope_orig_ctx;
    rope_factors = Llama3RopeFreqFactors(rope_hp);
    ts.push_back({"rope_freqs.weight", {head_dim / 2}});
  }
  if (sh.longrope_orig_ctx > 0) {
    ts.push_back({"rope_factors_long.weight", {head_dim / 2}, true});
    ts.push_back({"rope_factors_short.weight", {head_dim / 2}, true});
  }
  // Fused projections where the family's real files have them (phi3).
  const bool fused = arch == Arch::kPhi3;
  const int64_t q_norm_n = QkNormWidth(fam, head_dim, n_q);
  const int64_t k_norm_n = QkNormWidth(fam, head_dim, n_kv);
  for (int64_t l = 0; l < sh.n_layer; ++l) {
    auto n = [l](const char* s) { return absl::StrCat("blk.", l, ".", s); };
    if (fam.pre_norms) ts.push_back({n("attn_norm.weight"), {sh.n_embd}, true});
    if (fused) {
      ts.push_back({n("attn_qkv.weight"), {sh.n_embd, n_q + 2 * n_kv}});
    } else {
      ts.push_back({n("attn_q.weight"), {sh.n_embd, n_q}});
      ts.push_back({n("attn_k.weight"), {sh.n_embd, n_kv}});
      ts.push_back({n("attn_v.weight"), {sh.n_embd, n_kv}});
    }
    if (fam.qkv_bias) {
      ts.push_back({n("attn_q.bias"), {n_q}});
      ts.push_back({n("attn_k.bias"), {n_kv}});
      ts.push_back({n("attn_v.bias"), {n_kv}});
    }
    if (fam.qk_norm != QkNorm::kNone) {
      ts.push_back({n("attn_q_norm.weight"), {q_norm_n}, true});
      ts.push_back({n("attn_k_norm.weight"), {k_norm_n}, true});
    }
    if (fam.sub_norms) ts.push_back({n("attn_sub_norm.weight"), {n_q}, true});
    ts.push_back({n("attn_output.weight"), {n_q, sh.n_embd}});
    if (fam.post_norms) ts.push_back({n("post_attention_norm.weight"), {sh.n_embd}, true});
    if (fam.pre_norms) ts.push_back({n("ffn_norm.weight"), {sh.n_embd}, true});
    if (fused) {
      ts.push_back({n("ffn_up.weight"), {sh.n_embd, 2 * sh.n_ff}});
    } else {
      ts.push_back({n("ffn_gate.weight"), {sh.n_embd, sh.n_ff}});
      ts.push_back({n("ffn_up.weight"), {sh.n_embd, sh.n_ff}});
    }
    if (fam.sub_norms) ts.push_back({n("ffn_sub_norm.weight"), {sh.n_ff}, true});
    ts.push_back({n("ffn_down.weight"), {sh.n_ff, sh.n_embd}});
    if (fam.post_norms) ts.push_back({n("post_ffw_norm.weight"), {sh.n_embd}, true});
  }
  ts.push_back({"output_norm.weight", {sh.n_embd}, true});
  if (!sh.tied_output) ts.push_back({"output.weight", {sh.n_embd, n_vocab}});

  size_t total = 0;
  for (const SynthTensor& t : ts) {
    const MixModel model{static_cast<int>(sh.n_layer), static_cast<int>(sh.n_head / sh.n_head_kv), 0, sh.tied_output};
    const GgmlType type = ChooseTensorType(mix, model, t.name, static_cast<int>(t.dims.size()), t.dims[0], opts.pure);
    if (auto s = w.DeclareTensor(t.name, type, t.dims); !s.ok()) return s;
    total += w.tensors().back().nbytes;
  }
  spdlog::info("synth {} ({}): {} tensors, {:.1f} MiB, n_vocab {}", sh.name, a, ts.size(),
               total / 1048576.0, n_vocab);

  return internal::WriteSynthesized(w, out_path, opts.n_threads, opts.progress, [&](size_t tensor) {
    const SynthTensor& t = ts[tensor];
    const int64_t n_in = t.dims[0];
    RowFn make_row;
    if (t.name == "rope_freqs.weight") {
      make_row = [&](int64_t, float* out) {
        std::copy(rope_factors.begin(), rope_factors.end(), out);
        return absl::OkStatus();
      };
    } else if (t.ones) {
      make_row = [n_in](int64_t, float* out) {
        std::fill_n(out, n_in, 1.0f);
        return absl::OkStatus();
      };
    } else {
      make_row = NormalRows(opts.seed, t.name, 0.02f, n_in);
      // BitNet's layer matrices are ternary; its embeddings are not.
      if (arch == Arch::kBitnet && absl::StartsWith(t.name, "blk.")) make_row = TernaryRows(std::move(make_row), n_in);
    }
    return make_row;
  });
}

}  // namespace llmesh::engine
