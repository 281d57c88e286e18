// Attention inner loops. The portable bodies are the plain definitions; the
// AVX-512 ones (head_dim a multiple of 16, every llama shape) exist because
// these loops ran as a call per cached position: a dot product with its own
// horizontal sum, and an axpy that loaded and stored the output each time.
// Here four scores share one horizontal reduction and the output row stays
// in registers across all positions.
// GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "llmesh/engine/attention_ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "llmesh/engine/matmul.h"
#include "llmesh/engine/ops.h"
#include "simd_exp_avx512.h"

namespace llmesh::engine {
namespace {

#pragma GCC push_options
#pragma GCC target("avx512f,fma")

// [sum(a), sum(b), sum(c), sum(d)]: the four horizontal sums share their
// shuffles instead of paying for a full reduction each.
inline __m128 Sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512 w = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(w),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

void ScoresAvx512(const float* q, const float* k, size_t ks, int32_t n, int64_t hd, float scale,
                  float* scores) {
  int32_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const float* k0 = k + r * ks;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < hd; i += 16) {
      const __m512 qv = _mm512_loadu_ps(q + i);
      a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + i), a0);
      a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + ks + i), a1);
      a2 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + 2 * ks + i), a2);
      a3 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + 3 * ks + i), a3);
    }
    _mm_storeu_ps(scores + r, _mm_mul_ps(Sum4(a0, a1, a2, a3), _mm_set1_ps(scale)));
  }
  for (; r < n; ++r) {
    __m512 a = _mm512_setzero_ps();
    for (int64_t i = 0; i < hd; i += 16) {
      a = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(k + r * ks + i), a);
    }
    scores[r] = _mm512_reduce_add_ps(a) * scale;
  }
}

void SoftmaxAvx512(float* x, int64_t n) {
  __m512 mv = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
  float max = _mm512_reduce_max_ps(mv);
  for (int64_t j = i; j < n; ++j) max = std::max(max, x[j]);
  const __m512 m = _mm512_set1_ps(max);
  __m512 sv = _mm512_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    const __m512 e = internal::ExpNonPositive(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
    _mm512_storeu_ps(x + i, e);
    sv = _mm512_add_ps(sv, e);
  }
  if (i < n) {  // the tail through a masked load: same exp as the body
    const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 e = _mm512_maskz_mov_ps(k, internal::ExpNonPositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m)));
    _mm512_mask_storeu_ps(x + i, k, e);
    sv = _mm512_add_ps(sv, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sv));
  for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
  if (i < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
  }
}

// kC 16-float columns of o stay in registers for all n rows of v.
template <int kC>
void AccumulateColumns(const float* p, const float* v, size_t vs, int32_t n, float* o) {
  __m512 acc[kC];
  for (int c = 0; c < kC; ++c) acc[c] = _mm512_loadu_ps(o + 16 * c);
  for (int32_t r = 0; r < n; ++r) {
    const __m512 pr = _mm512_set1_ps(p[r]);
    for (int c = 0; c < kC; ++c) acc[c] = _mm512_fmadd_ps(pr, _mm512_loadu_ps(v + r * vs + 16 * c), acc[c]);
  }
  for (int c = 0; c < kC; ++c) _mm512_storeu_ps(o + 16 * c, acc[c]);
}

void AccumulateAvx512(const float* p, const float* v, size_t vs, int32_t n, int64_t hd, float* o) {
  for (int64_t i = 0; i < hd; i += 128) {  // up to 8 registers of o at a time
    switch (std::min<int64_t>(8, (hd - i) / 16)) {
      case 1: AccumulateColumns<1>(p, v + i, vs, n, o + i); break;
      case 2: AccumulateColumns<2>(p, v + i, vs, n, o + i); break;
      case 3: AccumulateColumns<3>(p, v + i, vs, n, o + i); break;
      case 4: AccumulateColumns<4>(p, v + i, vs, n, o + i); break;
      case 5: AccumulateColumns<5>(p, v + i, vs, n, o + i); break;
      case 6: AccumulateColumns<6>(p, v + i, vs, n, o + i); break;
      case 7: AccumulateColumns<7>(p, v + i, vs, n, o + i); break;
      default: AccumulateColumns<8>(p, v + i, vs, n, o + i); break;
    }
  }
}

#pragma GCC pop_options

bool UseAvx512(int64_t head_dim) {
  return head_dim % 16 == 0 && ActiveSimdLevel() >= SimdLevel::kAvx512;
}

}  // namespace

void attn_scores(const float* q, const float* k, size_t k_stride, int32_t n, int64_t head_dim,
                 float scale, float* scores) {
  if (UseAvx512(head_dim)) return ScoresAvx512(q, k, k_stride, n, head_dim, scale, scores);
  for (int32_t r = 0; r < n; ++r) scores[r] = dot_f32(q, k + r * k_stride, head_dim) * scale;
}

void attn_softmax(float* x, int64_t n) {
  if (n > 0 && ActiveSimdLevel() >= SimdLevel::kAvx512) return SoftmaxAvx512(x, n);
  softmax(x, n);
}

void attn_accumulate(const float* p, const float* v, size_t v_stride, int32_t n, int64_t head_dim,
                     float* o) {
  if (UseAvx512(head_dim)) return AccumulateAvx512(p, v, v_stride, n, head_dim, o);
  for (int32_t r = 0; r < n; ++r) axpy(o, p[r], v + r * v_stride, head_dim);
}

}  // namespace llmesh::engine
