// Rotary position embeddings as ggml computes them (ggml_rope_ext): one
// RopeParams per layer, covering plain, linear, llama3 (frequency divisors),
// LongRoPE (short/long divisors plus a magnitude factor) and YaRN.
//
// For dimension pair i of a rotation over n_rot dims, at position p:
//   theta_extrap = p * base^(-2i/n_rot) / freq_factors[i]
//   theta_interp = freq_scale * theta_extrap
//   YaRN (ext_factor != 0): theta = blend of the two by a ramp over the pairs
//     between the correction dims of beta_fast and beta_slow, and the
//     magnitude gains 1 + 0.1 ln(1 / freq_scale);
//   otherwise theta = theta_interp.
//   cos/sin = cos(theta), sin(theta), both times attn_factor (and YaRN's gain).
// Scaling cos and sin scales q and k, hence the attention logits by its square.
#pragma once

#include <cstdint>

namespace llmesh::engine {

struct RopeParams {
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;
  float ext_factor = 0.0f;   // 1 on YaRN layers
  float attn_factor = 1.0f;  // magnitude of cos/sin
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int64_t n_ctx_orig = 0;               // YaRN's original context
  const float* freq_factors = nullptr;  // (n_rot/2) divisors, or null

  bool operator==(const RopeParams&) const = default;
};

// cos/sin of the angles at `pos`: cs[2i], cs[2i+1] for i < n_rot/2.
void RopeCosSin(const RopeParams& r, int64_t n_rot, int32_t pos, float* cs);

// llama.cpp's attention factor for a YaRN layer scaled by freq_scale
// (before the magnitude gain ggml adds back inside the rotation):
// get_mscale(factor) / get_mscale(factor, log_mul) / (1 + 0.1 ln factor).
float YarnAttnFactor(float freq_scale, float yarn_log_mul);

}  // namespace llmesh::engine
