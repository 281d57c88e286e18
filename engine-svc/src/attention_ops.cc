// Attention inner loops. The portable bodies are the plain definitions; the
// AVX-512 ones (head_dim a multiple of 16, every llama shape) exist because
// these loops ran as a call per cached position: a dot product with its own
// horizontal sum, and an axpy that loaded and stored the output each time.
// Here four scores share one horizontal reduction, the outputs stay in
// registers across all positions, and the query heads of one K/V head share
// each K and V load. Per head, the accumulation was 4 dependent FMA chains
// (latency-bound); a block of heads gives 16.
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

// kH heads x 4 positions: 4kH independent FMA chains per pass over head_dim.
template <int kH>
void ScoresHeads(const float* q, const float* k, size_t ks, int32_t n, int64_t hd, float scale, float* s,
                 size_t ss) {
  int32_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const float* k0 = k + r * ks;
    __m512 a[kH][4];
    for (int h = 0; h < kH; ++h)
      for (int j = 0; j < 4; ++j) a[h][j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < hd; i += 16) {
      __m512 kv[4];
      for (int j = 0; j < 4; ++j) kv[j] = _mm512_loadu_ps(k0 + j * ks + i);
      for (int h = 0; h < kH; ++h) {
        const __m512 qv = _mm512_loadu_ps(q + h * hd + i);
        for (int j = 0; j < 4; ++j) a[h][j] = _mm512_fmadd_ps(qv, kv[j], a[h][j]);
      }
    }
    for (int h = 0; h < kH; ++h)
      _mm_storeu_ps(s + h * ss + r, _mm_mul_ps(Sum4(a[h][0], a[h][1], a[h][2], a[h][3]), _mm_set1_ps(scale)));
  }
  for (; r < n; ++r) {
    for (int h = 0; h < kH; ++h) {
      __m512 a = _mm512_setzero_ps();
      for (int64_t i = 0; i < hd; i += 16) {
        a = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * hd + i), _mm512_loadu_ps(k + r * ks + i), a);
      }
      s[h * ss + r] = _mm512_reduce_add_ps(a) * scale;
    }
  }
}

void ScoresAvx512(const float* q, int64_t n_heads, const float* k, size_t ks, int32_t n, int64_t hd, float scale,
                  float* s, size_t ss) {
  int64_t h = 0;
  for (; h + 4 <= n_heads; h += 4) ScoresHeads<4>(q + h * hd, k, ks, n, hd, scale, s + h * ss, ss);
  switch (n_heads - h) {
    case 3: ScoresHeads<3>(q + h * hd, k, ks, n, hd, scale, s + h * ss, ss); break;
    case 2: ScoresHeads<2>(q + h * hd, k, ks, n, hd, scale, s + h * ss, ss); break;
    case 1: ScoresHeads<1>(q + h * hd, k, ks, n, hd, scale, s + h * ss, ss); break;
    default: break;
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

// kC 16-float columns of kH heads' outputs stay in registers for all n rows
// of v; each row's columns are loaded once for the kH heads.
template <int kH, int kC>
void AccumulateColumns(const float* p, size_t ps, const float* v, size_t vs, int32_t n, float* o, int64_t hd) {
  __m512 acc[kH][kC];
  for (int h = 0; h < kH; ++h)
    for (int c = 0; c < kC; ++c) acc[h][c] = _mm512_loadu_ps(o + h * hd + 16 * c);
  for (int32_t r = 0; r < n; ++r) {
    __m512 vr[kC];
    for (int c = 0; c < kC; ++c) vr[c] = _mm512_loadu_ps(v + r * vs + 16 * c);
    for (int h = 0; h < kH; ++h) {
      const __m512 pr = _mm512_set1_ps(p[h * ps + r]);
      for (int c = 0; c < kC; ++c) acc[h][c] = _mm512_fmadd_ps(pr, vr[c], acc[h][c]);
    }
  }
  for (int h = 0; h < kH; ++h)
    for (int c = 0; c < kC; ++c) _mm512_storeu_ps(o + h * hd + 16 * c, acc[h][c]);
}

// Heads in blocks that keep kH * kC accumulators plus a row of v within the
// 32 registers.
template <int kC>
void AccumulateHeads(const float* p, size_t ps, int64_t n_heads, const float* v, size_t vs, int32_t n, float* o,
                     int64_t hd) {
  constexpr int kH = kC <= 4 ? 4 : 2;
  int64_t h = 0;
  for (; h + kH <= n_heads; h += kH) AccumulateColumns<kH, kC>(p + h * ps, ps, v, vs, n, o + h * hd, hd);
  for (; h < n_heads; ++h) AccumulateColumns<1, kC>(p + h * ps, ps, v, vs, n, o + h * hd, hd);
}

void AccumulateAvx512(const float* p, size_t ps, int64_t n_heads, const float* v, size_t vs, int32_t n, int64_t hd,
                      float* o) {
  for (int64_t i = 0; i < hd; i += 128) {  // up to 8 registers of a head's output at a time
    switch (std::min<int64_t>(8, (hd - i) / 16)) {
      case 1: AccumulateHeads<1>(p, ps, n_heads, v + i, vs, n, o + i, hd); break;
      case 2: AccumulateHeads<2>(p, ps, n_heads, v + i, vs, n, o + i, hd); break;
      case 3: AccumulateHeads<3>(p, ps, n_heads, v + i, vs, n, o + i, hd); break;
      case 4: AccumulateHeads<4>(p, ps, n_heads, v + i, vs, n, o + i, hd); break;
      case 5: AccumulateHeads<5>(p, ps, n_heads, v + i, vs, n, o + i, hd); break;
      case 6: AccumulateHeads<6>(p, ps, n_heads, v + i, vs, n, o + i, hd); break;
      case 7: AccumulateHeads<7>(p, ps, n_heads, v + i, vs, n, o + i, hd); break;
      default: AccumulateHeads<8>(p, ps, n_heads, v + i, vs, n, o + i, hd); break;
    }
  }
}

#pragma GCC pop_options

bool UseAvx512(int64_t head_dim) {
  return head_dim % 16 == 0 && ActiveSimdLevel() >= SimdLevel::kAvx512;
}

}  // namespace

void attn_scores(const float* q, int64_t n_heads, const float* k, size_t k_stride, int32_t n, int64_t head_dim,
                 float scale, float* scores, size_t s_stride) {
  if (UseAvx512(head_dim)) return ScoresAvx512(q, n_heads, k, k_stride, n, head_dim, scale, scores, s_stride);
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int32_t r = 0; r < n; ++r) {
      scores[h * s_stride + r] = dot_f32(q + h * head_dim, k + r * k_stride, head_dim) * scale;
    }
  }
}

void attn_softmax(float* x, int64_t n) {
  if (n > 0 && ActiveSimdLevel() >= SimdLevel::kAvx512) return SoftmaxAvx512(x, n);
  softmax(x, n);
}

void attn_accumulate(const float* p, size_t p_stride, int64_t n_heads, const float* v, size_t v_stride, int32_t n,
                     int64_t head_dim, float* o) {
  if (UseAvx512(head_dim)) return AccumulateAvx512(p, p_stride, n_heads, v, v_stride, n, head_dim, o);
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int32_t r = 0; r < n; ++r) axpy(o + h * head_dim, p[h * p_stride + r], v + r * v_stride, head_dim);
  }
}

}  // namespace llmesh::engine
