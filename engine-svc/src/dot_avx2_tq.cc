// AVX2 dot products of the ternary types with q8_K activations. Same algebra
// as dot_avx512_tq.cc (read its header comment):
//   dot(block) = d * dx * (sum t * xq - sum xq),  t in {0, 1, 2}
// 32 elements per step: vpmaddubsw (u8 x s8 -> s16 pairs, |pair| <= 512)
// summed in s16 over the block's 8 steps (<= 4096, no overflow), widened
// once per block and seeded with -sum(xq) from q8_K's per-16 sums.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels.h"
#include "simd_avx2.h"

namespace llmesh::engine::internal {
namespace {

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

using avx2::Half;
using avx2::HSum;

template <GgmlType kType> struct TQ;

template <> struct TQ<GgmlType::kTQ2_0> {
  using Block = block_tq2_0;
  // Step k: elements 32k..32k+31 = bits 2(k%4) of qs[32(k/4) ..].
  static __m256i Step(const Block& b, int k) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * (k / 4)));
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * (k % 4))), _mm256_set1_epi8(3));
  }
};

// Step k of tq1_0 (quants_tq.cc's element order): the source bytes in each
// 128-bit lane and the power of 3 that brings the wanted trit to the top.
//   k < 5: qs[0..32) trit k;  k = 5, 6: qs[32..48) trits 2(k-5), 2(k-5)+1;
//   k = 7: qs[32..48) trit 4 | qh[0..4) trits 0..3 (4 bytes each).
struct Tq1Pow3 {
  alignas(32) int16_t v[8][16];
  constexpr Tq1Pow3() : v() {
    constexpr int16_t kPow3[5] = {1, 3, 9, 27, 81};
    for (int l = 0; l < 16; ++l) {
      for (int k = 0; k < 5; ++k) v[k][l] = kPow3[k];
      v[5][l] = kPow3[l / 8];
      v[6][l] = kPow3[2 + l / 8];
      v[7][l] = l < 8 ? kPow3[4] : kPow3[(l - 8) / 2];
    }
  }
};
constexpr Tq1Pow3 kTq1Pow3;

template <> struct TQ<GgmlType::kTQ1_0> {
  using Block = block_tq1_0;
  static __m256i Step(const Block& b, int k) {
    __m256i v;
    if (k < 5) {
      v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    } else {
      const __m128i tail = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 32));
      uint32_t qh;
      std::memcpy(&qh, b.qh, 4);
      v = _mm256_set_m128i(k == 7 ? _mm_set1_epi32(static_cast<int>(qh)) : tail, tail);
    }
    // Bytes times 3^n in 16-bit lanes: the low byte of v * p is right, the
    // high byte of (v & 0xFF00) * p is right.
    const __m256i p = _mm256_load_si256(reinterpret_cast<const __m256i*>(kTq1Pow3.v[k]));
    const __m256i hi_bytes = _mm256_set1_epi16(static_cast<int16_t>(0xFF00));
    const __m256i m = _mm256_blendv_epi8(_mm256_mullo_epi16(v, p),
                                         _mm256_mullo_epi16(_mm256_and_si256(v, hi_bytes), p), hi_bytes);
    // The top trit, (m >= 86) + (m >= 171), with signed compares of m - 128.
    const __m256i ms = _mm256_xor_si256(m, _mm256_set1_epi8(static_cast<char>(0x80)));
    const __m256i ge1 = _mm256_cmpgt_epi8(ms, _mm256_set1_epi8(85 - 128));
    const __m256i ge2 = _mm256_cmpgt_epi8(ms, _mm256_set1_epi8(170 - 128));
    return _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(ge1, ge2));
  }
};

// R weight rows x T activation rows, one 256-element block per step.
template <GgmlType kType, int R, int T>
void TqKernel(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
              int64_t ldy) {
  using Q = TQ<kType>;
  using Block = typename Q::Block;
  const int64_t nb = n / kQK_K;
  const Block* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const Block*>(w + r * w_stride);
  const block_q8_K* xb[T];
  for (int t = 0; t < T; ++t) xb[t] = reinterpret_cast<const block_q8_K*>(x + t * x_stride);
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);

  for (int64_t i = 0; i < nb; ++i) {  // hot loop
    for (int r = 0; r < R; ++r) PrefetchNextRows<R, T>(wr[r] + i, w_stride, sizeof(Block));
    __m256i sum16[R][T];
    for (int k = 0; k < 8; ++k) {
      __m256i u[R];
      for (int r = 0; r < R; ++r) u[r] = Q::Step(wr[r][i], k);
      for (int t = 0; t < T; ++t) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[t][i].qs + 32 * k));
        for (int r = 0; r < R; ++r) {
          const __m256i p = _mm256_maddubs_epi16(u[r], xv);
          sum16[r][t] = k == 0 ? p : _mm256_add_epi16(sum16[r][t], p);
        }
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[t][i].bsums));
      const __m256i neg_sum = _mm256_madd_epi16(bs, _mm256_set1_epi16(-1));
      for (int r = 0; r < R; ++r) {
        const __m256i isum = _mm256_add_epi32(_mm256_madd_epi16(sum16[r][t], ones), neg_sum);
        const __m256 scale = _mm256_set1_ps(Half(wr[r][i].d) * xb[t][i].d);
        acc[r][t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = HSum(acc[r][t]);
}

template <GgmlType kType>
struct TqK {
  template <int R, int T>
  struct K {
    static void Run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
      TqKernel<kType, R, T>(n, w, ws, x, xs, y, ldy);
    }
  };
};

template <GgmlType kType>
void TileTq(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y,
            int64_t ldy) {
  WalkTile<TqK<kType>::template K, 2, 2, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

}  // namespace

TileFn Avx2TqTile(GgmlType type) {
  switch (type) {
    case GgmlType::kTQ1_0: return &TileTq<GgmlType::kTQ1_0>;
    case GgmlType::kTQ2_0: return &TileTq<GgmlType::kTQ2_0>;
    default: return nullptr;
  }
}

}  // namespace llmesh::engine::internal
