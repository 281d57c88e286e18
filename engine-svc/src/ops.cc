// Forward-pass vector ops. The reductions (dot, sum of squares) have explicit
// AVX2 bodies because the compiler will not reorder float sums on its own;
// the element-wise ops are plain loops cloned per ISA by the compiler.
// GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "llmesh/engine/ops.h"

#include <immintrin.h>

#include <cmath>

#include "llmesh/engine/matmul.h"
#include "simd_exp_avx512.h"

namespace llmesh::engine {
namespace {

__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  acc0 = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float sum = _mm_cvtss_f32(s);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotScalar(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
  return HasAvx2() ? DotAvx2(a, b, n) : DotScalar(a, b, n);
}

void rms_norm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  const float ss = dot_f32(x, x, n) / static_cast<float>(n);
  const float inv = 1.0f / std::sqrt(ss + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = std::fmax(max, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// silu(g) = g * sigmoid(g), sigmoid through e = exp(-|g|) <= 1 so no
// overflow: 1 / (1 + e) for g >= 0, e / (1 + e) below. std::exp per element
// was ~3% of a batched decode step.
__attribute__((target("avx512f,fma"))) inline __m512 SiluMul(__m512 g, __m512 u) {
  const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  const __m512 e = internal::ExpNonPositive(_mm512_sub_ps(zero, _mm512_abs_ps(g)));
  const __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(g, zero, _CMP_LT_OQ), one, e);
  return _mm512_mul_ps(_mm512_mul_ps(g, _mm512_div_ps(num, _mm512_add_ps(one, e))), u);
}

__attribute__((target("avx512f,fma"))) void SwigluAvx512(float* out, const float* gate, const float* up,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, SiluMul(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
  if (i < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(out + i, k, SiluMul(_mm512_maskz_loadu_ps(k, gate + i), _mm512_maskz_loadu_ps(k, up + i)));
  }
}

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  if (ActiveSimdLevel() >= SimdLevel::kAvx512) return SwigluAvx512(out, gate, up, n);
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

// tanh through exp: tanh(u) = 1 - 2 / (exp(2u) + 1), vectorisable by GCC.
__attribute__((target_clones("avx2", "default"))) void geglu(float* out, const float* gate,
                                                             const float* up, int64_t n) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float u = kSqrt2OverPi * g * (1.0f + 0.044715f * g * g);
    const float t = 1.0f - 2.0f / (std::exp(2.0f * u) + 1.0f);
    out[i] = 0.5f * g * (1.0f + t) * up[i];
  }
}

void softcap(float* x, float cap, int64_t n) {
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] * inv);
}

__attribute__((target_clones("avx2", "default"))) void add(float* out, const float* a,
                                                           const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

__attribute__((target_clones("avx2", "default"))) void scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

__attribute__((target_clones("avx2", "default"))) void axpy(float* y, float a, const float* x,
                                                            int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace llmesh::engine
