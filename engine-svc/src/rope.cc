#include "llmesh/engine/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace llmesh::engine {
namespace {

// The dimension pair where the rotation at the original context completes
// n_rot_turns turns (YaRN's correction dims), as ggml_rope_yarn_corr_dim.
float CorrDim(int64_t n_dims, int64_t n_ctx_orig, float n_rot_turns, float base) {
  return static_cast<float>(n_dims) *
         std::log(static_cast<float>(n_ctx_orig) / (n_rot_turns * 2.0f * std::numbers::pi_v<float>)) /
         (2.0f * std::log(base));
}

}  // namespace

float YarnAttnFactor(float freq_scale, float yarn_log_mul) {
  const float factor = 1.0f / freq_scale;
  auto mscale = [factor](float m) { return factor <= 1.0f ? 1.0f : 0.1f * m * std::log(factor) + 1.0f; };
  float a = yarn_log_mul != 0.0f ? mscale(1.0f) / mscale(yarn_log_mul) : mscale(1.0f);
  // ggml multiplies 1 + 0.1 ln(factor) back in on YaRN layers.
  a *= 1.0f / (1.0f + 0.1f * std::log(factor));
  return a;
}

void RopeCosSin(const RopeParams& r, int64_t n_rot, int32_t pos, float* cs) {
  const float theta_scale = std::pow(r.freq_base, -2.0f / static_cast<float>(n_rot));
  float mscale = r.attn_factor;
  float corr_lo = 0.0f, corr_hi = 0.0f;
  if (r.ext_factor != 0.0f) {
    corr_lo = std::max(0.0f, std::floor(CorrDim(n_rot, r.n_ctx_orig, r.beta_fast, r.freq_base)));
    corr_hi = std::min(static_cast<float>(n_rot - 1), std::ceil(CorrDim(n_rot, r.n_ctx_orig, r.beta_slow, r.freq_base)));
    mscale *= 1.0f + 0.1f * std::log(1.0f / r.freq_scale);
  }
  // Repeated multiplication, not pow per pair: ggml's rounding, so logits
  // match llama.cpp's closely.
  float theta_extrap = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float ff = r.freq_factors ? r.freq_factors[i] : 1.0f;
    const float extrap = theta_extrap / ff;
    const float interp = r.freq_scale * extrap;
    float theta = interp;
    if (r.ext_factor != 0.0f) {
      const float y = (static_cast<float>(i) - corr_lo) / std::max(0.001f, corr_hi - corr_lo);
      const float ramp = (1.0f - std::min(1.0f, std::max(0.0f, y))) * r.ext_factor;
      theta = interp * (1.0f - ramp) + extrap * ramp;
    }
    cs[2 * i] = std::cos(theta) * mscale;
    cs[2 * i + 1] = std::sin(theta) * mscale;
    theta_extrap *= theta_scale;
  }
}

}  // namespace llmesh::engine
