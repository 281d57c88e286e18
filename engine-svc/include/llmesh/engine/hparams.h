// Model hyperparameters read from GGUF metadata (`{arch}.*` keys), validated
// once at load so the forward pass can trust every number it reads.
//
// Architectures follow llama.cpp's names; what each one's graph adds over
// llama is its Family (family.h). The fields below are the union of what
// every family reads; a family that lacks a feature leaves its default.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::engine {

enum class Arch {
  kLlama, kQwen2, kQwen3, kGemma2, kGemma3, kPhi3, kMistral3, kOlmo2, kGranite, kSmolLM3, kExaone4, kBitnet
};
std::string_view ArchName(Arch arch);

// How RoPE pairs up the dimensions of a head, as llama.cpp names it:
// kNorm rotates adjacent pairs (2i, 2i+1) — GGUF llama Q/K weights are
// permuted by convert_hf_to_gguf for exactly this; kNeox rotates
// (i, i + n_rot/2), the HF layout used unpermuted by qwen2.
enum class RopeType { kNorm, kNeox };

enum class RopeScaling { kNone, kLinear, kLlama3, kYarn };
std::string_view RopeScalingName(RopeScaling s);

// Sanity limits: a file claiming more is rejected before anything is sized
// from it (llama.cpp's LLAMA_MAX_LAYERS is 512).
inline constexpr int64_t kMaxLayers = 512;
inline constexpr int64_t kMaxEmbd = 1 << 16;
inline constexpr int64_t kMaxFf = 1 << 20;
inline constexpr int64_t kMaxHeads = 1024;
inline constexpr int64_t kMaxCtx = 1 << 24;

struct ModelParams {
  Arch arch = Arch::kLlama;
  std::string name;  // general.name, for display only

  int64_t n_vocab = 0;        // rows of token_embd
  int64_t n_ctx_train = 0;    // {arch}.context_length
  int64_t n_embd = 0;         // {arch}.embedding_length
  int64_t n_layer = 0;        // {arch}.block_count
  int64_t n_ff = 0;           // {arch}.feed_forward_length
  int64_t n_head = 0;         // {arch}.attention.head_count
  int64_t n_head_kv = 0;      // {arch}.attention.head_count_kv (GQA), default n_head
  int64_t n_embd_head_k = 0;  // {arch}.attention.key_length, default n_embd / n_head
  int64_t n_embd_head_v = 0;  // {arch}.attention.value_length, default n_embd_head_k
  int64_t n_rot = 0;          // {arch}.rope.dimension_count, default n_embd_head_k
  float f_norm_rms_eps = 0;   // {arch}.attention.layer_norm_rms_epsilon

  RopeType rope_type = RopeType::kNorm;
  float rope_freq_base = 10000.0f;  // {arch}.rope.freq_base
  // Linear scaling: positions are multiplied by rope_freq_scale (= 1/factor).
  RopeScaling rope_scaling = RopeScaling::kNone;
  float rope_freq_scale = 1.0f;
  // Llama 3.1 scaling ({arch}.rope.scaling.*): per-dimension divisors of the
  // frequencies, computed here once (n_rot/2 values) exactly as
  // convert_hf_to_gguf computes the rope_freqs.weight tensor. A file carrying
  // rope_freqs.weight overrides these with its own values at load.
  float rope_scaling_factor = 1.0f;
  float rope_scaling_low_freq_factor = 1.0f;
  float rope_scaling_high_freq_factor = 4.0f;
  int64_t rope_scaling_orig_ctx = 8192;
  std::vector<float> rope_freq_factors;  // (n_rot/2) or empty

  // YaRN ({arch}.rope.scaling.type = yarn): frequencies interpolated by
  // rope_freq_scale below the correction range, kept above it, blended
  // between; cos/sin carry a magnitude correction (see rope.h).
  int64_t n_ctx_orig_yarn = 0;     // {arch}.rope.scaling.original_context_length
  float yarn_beta_fast = 32.0f;    // {arch}.rope.scaling.yarn_beta_fast
  float yarn_beta_slow = 1.0f;     // {arch}.rope.scaling.yarn_beta_slow
  float rope_yarn_log_mul = 0.0f;  // {arch}.rope.scaling.yarn_log_multiplier
  float rope_attn_factor = 1.0f;   // {arch}.rope.scaling.attn_factor (phi3 LongRoPE, OLMo 3)

  // Sliding-window attention: a token on a sliding layer sees only the last
  // n_swa positions (its own included).
  int64_t n_swa = 0;                // {arch}.attention.sliding_window; 0: none
  std::vector<uint8_t> swa_layers;  // (n_layer) 1 = sliding-window layer
  // Sliding layers may rotate with their own base and scale (gemma3, olmo3).
  float rope_freq_base_swa = 10000.0f;
  float rope_freq_scale_swa = 1.0f;
  std::vector<uint8_t> rope_layers;  // (n_layer) 0 = no positional encoding (NoPE)

  // Scalars some families multiply in (0 = not used).
  float f_attention_scale = 0.0f;   // kq scale; 0: 1/sqrt(head_dim)
  float f_attn_softcap = 0.0f;      // scores = cap * tanh(scores / cap)
  float f_final_softcap = 0.0f;     // logits = cap * tanh(logits / cap)
  float f_embedding_scale = 0.0f;   // x = embd * scale
  float f_residual_scale = 0.0f;    // x += sublayer * scale
  float f_logit_scale = 0.0f;       // logits /= scale
  // Position-dependent query temperature (llama4 / mistral3):
  // q *= 1 + f_attn_temp_scale * log(floor(pos / n_attn_temp_floor_scale) + 1)
  float f_attn_temp_scale = 0.0f;
  int64_t n_attn_temp_floor_scale = 0;

  bool has_qkv_bias = false;  // qwen2

  bool is_swa(int64_t il) const { return !swa_layers.empty() && swa_layers[il] != 0; }
  bool uses_rope(int64_t il) const { return rope_layers.empty() || rope_layers[il] != 0; }
  float kq_scale() const {
    return f_attention_scale != 0.0f ? f_attention_scale
                                     : 1.0f / std::sqrt(static_cast<float>(n_embd_head_k));
  }

  int64_t n_embd_q() const { return n_head * n_embd_head_k; }  // rows of attn_q
  int64_t n_embd_k_gqa() const { return n_head_kv * n_embd_head_k; }
  int64_t n_embd_v_gqa() const { return n_head_kv * n_embd_head_v; }
  int64_t n_gqa() const { return n_head / n_head_kv; }
};

// Layer il is a sliding-window layer when il % pattern < pattern - 1
// (llama.cpp's set_swa_pattern: pattern 2 slides the even layers, 6 has one
// global layer in six, 1 slides none and 0 slides every layer).
std::vector<uint8_t> SwaPattern(int64_t n_layer, int64_t pattern);

// {arch}.attention.sliding_window_pattern, or `dflt` when absent.
absl::StatusOr<int64_t> ReadSwaPeriod(const gguf::GgufFile& f, const std::string& arch, int64_t dflt);

// Reads and validates every hyperparameter. Errors are INVALID_ARGUMENT and
// name the offending key: missing required metadata, out-of-range values,
// an unknown architecture. n_vocab is left 0 (the loader takes it from the
// token_embd tensor and checks it against the vocabulary).
absl::StatusOr<ModelParams> ReadModelParams(const gguf::GgufFile& file);

// The per-dimension-pair llama3 frequency divisors (n_rot/2 values).
std::vector<float> Llama3RopeFreqFactors(const ModelParams& hp);

// Human-readable multi-line summary (for `llmesh info`).
std::string DescribeModelParams(const ModelParams& hp);

}  // namespace llmesh::engine
