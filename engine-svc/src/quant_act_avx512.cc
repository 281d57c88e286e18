// AVX-512 activation quantization: runs once per activation row per matmul,
// so at decode it is on the critical path of every layer. Bit-identical to
// QuantizeActScalar: same float operations per element (x * id rounded to
// nearest-even by vcvtps2dq, as nearest_int does), the same scalar scale
// arithmetic, and integer sums.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels.h"

namespace llmesh::engine::internal {
namespace {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")

// kQ8 layout: int8 qs[n] | float d[n/32] | float s[n/32], s = d * sum(qs).
void QuantizeQ8(const float* x, uint8_t* row, int64_t n) {
  int8_t* qs = reinterpret_cast<int8_t*>(row);
  float* d = reinterpret_cast<float*>(row + n);
  float* s = d + n / kQK;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const __m512 a = _mm512_loadu_ps(x + b * kQK), c = _mm512_loadu_ps(x + b * kQK + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
    const float db = amax / 127;
    const float id = db ? 1.0f / db : 0.0f;
    const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, _mm512_set1_ps(id)));
    const __m512i qc = _mm512_cvtps_epi32(_mm512_mul_ps(c, _mm512_set1_ps(id)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * kQK), _mm512_cvtsepi32_epi8(qa));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * kQK + 16), _mm512_cvtsepi32_epi8(qc));
    d[b] = db;
    s[b] = db * static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(qa, qc)));
  }
}

void QuantizeQ8K(const float* x, block_q8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < kQK_K; j += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
    const float amax = _mm512_reduce_max_ps(m);
    if (!amax) {
      std::memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    // The scalar code keeps the sign of the first element of largest |x|.
    float max = amax;
    for (int j = 0; j < kQK_K; j += 16) {
      const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hit) {
        max = x[j + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; j += 16) {
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), _mm512_set1_ps(iscale)));
      q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + j), _mm512_cvtsepi32_epi8(q));
      y[i].bsums[j / 16] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    y[i].d = 1 / iscale;
  }
}

#pragma GCC pop_options

}  // namespace

void QuantizeActAvx512(ActKind kind, const float* x, void* dst, int64_t n) {
  switch (kind) {
    case ActKind::kQ8: QuantizeQ8(x, static_cast<uint8_t*>(dst), n); break;
    case ActKind::kQ8K: QuantizeQ8K(x, static_cast<block_q8_K*>(dst), n); break;
    default: QuantizeActScalar(kind, x, dst, n); break;
  }
}

}  // namespace llmesh::engine::internal
