// AVX2 activation quantization, bit-identical to QuantizeActScalar (same
// per-element float operations, vcvtps2dq rounds to nearest-even as
// nearest_int does, integer sums). See quant_act_avx512.cc.
#include <immintrin.h>

#include <cstring>

#include "kernels.h"

namespace llmesh::engine::internal {
namespace {

#pragma GCC push_options
#pragma GCC target("avx2,fma")

inline __m256 Abs(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float HMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline int HSumI(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// 32 int32 (four vectors, in order) -> 32 int8 stored at q. Values are in
// [-127, 127], so the saturating packs are exact.
inline void Store32(int8_t* q, __m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  __m256i v = _mm256_packs_epi16(ab, cd);
  // packs interleave 128-bit lanes: dwords come out as a0 b0 c0 d0 a1 b1 c1 d1
  v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), v);
}

void QuantizeQ8(const float* x, uint8_t* row, int64_t n) {
  int8_t* qs = reinterpret_cast<int8_t*>(row);
  float* d = reinterpret_cast<float*>(row + n);
  float* s = d + n / kQK;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      m = _mm256_max_ps(m, Abs(v[k]));
    }
    const float amax = HMax(m);
    const float db = amax / 127;
    const float id = db ? 1.0f / db : 0.0f;
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], _mm256_set1_ps(id)));
    Store32(qs + b * kQK, q[0], q[1], q[2], q[3]);
    d[b] = db;
    s[b] = db * static_cast<float>(HSumI(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]))));
  }
}

void QuantizeQ8K(const float* x, block_q8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < kQK_K; j += 8) m = _mm256_max_ps(m, Abs(_mm256_loadu_ps(x + j)));
    const float amax = HMax(m);
    if (!amax) {
      std::memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    // The scalar code keeps the sign of the first element of largest |x|.
    float max = amax;
    for (int j = 0; j < kQK_K; j += 8) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(Abs(_mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (hit) {
        max = x[j + __builtin_ctz(hit)];
        break;
      }
    }
    const __m256 iscale = _mm256_set1_ps(-127.f / max);
    for (int j = 0; j < kQK_K; j += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), iscale));
        q[k] = _mm256_min_epi32(q[k], _mm256_set1_epi32(127));
      }
      Store32(y[i].qs + j, q[0], q[1], q[2], q[3]);
      y[i].bsums[j / 16] = static_cast<int16_t>(HSumI(_mm256_add_epi32(q[0], q[1])));
      y[i].bsums[j / 16 + 1] = static_cast<int16_t>(HSumI(_mm256_add_epi32(q[2], q[3])));
    }
    y[i].d = 1 / (-127.f / max);
  }
}

#pragma GCC pop_options

}  // namespace

void QuantizeActAvx2(ActKind kind, const float* x, void* dst, int64_t n) {
  switch (kind) {
    case ActKind::kQ8: QuantizeQ8(x, static_cast<uint8_t*>(dst), n); break;
    case ActKind::kQ8K: QuantizeQ8K(x, static_cast<block_q8_K*>(dst), n); break;
    default: QuantizeActScalar(kind, x, dst, n); break;
  }
}

}  // namespace llmesh::engine::internal
