// AVX2 dot products of the K-quants with q8_K activations. Same algebra as
// dot_avx512_kquants.cc (read its header comment):
//   dot(super-block) = dx * (d1 * sum_g sc_g * sum u*xq + d2 * sum_g mn_g * bsum_g)
// 32 elements per step: vpmaddubsw (u8 x s8 -> s16 pairs), vpmaddwd against
// the two 16-group scales of the chunk, add; one float conversion per
// super-block.
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

inline __m256i Load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
// (v >> s) & mask in every byte (s < 8: bits never cross a byte that survives the mask).
inline __m256i ShiftMask(__m256i v, int s, int mask) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(static_cast<char>(mask)));
}
// Bit `bit` of each byte of v moved to bit `to`.
inline __m256i BitTo(__m256i v, int bit, int to) {
  return _mm256_sll_epi16(ShiftMask(v, bit, 1), _mm_cvtsi32_si128(to));
}

// 16 s16 values duplicated pairwise: [a0 a0 a1 a1 ... a7 a7] from 8 values.
inline __m256i Dup16(__m128i a) { return _mm256_set_m128i(_mm_unpackhi_epi16(a, a), _mm_unpacklo_epi16(a, a)); }

// Per-type decoding. Scales(): the 16 per-16-group scales sc and offsets
// mn (s16), d1, d2. Chunk(k): elements 32k .. 32k+31 as unsigned bytes.
template <GgmlType kType> struct KQ;

// 12 packed bytes -> [sc0..sc7 | m0..m7] as s16 (ggml's kmask unpacking).
inline __m256i ScalesMinsK4(const uint8_t* scales) {
  uint32_t u[4];
  std::memcpy(u, scales, 12);
  constexpr uint32_t kM1 = 0x3f3f3f3f, kM2 = 0x0f0f0f0f, kM3 = 0x03030303;
  u[3] = ((u[2] >> 4) & kM2) | (((u[1] >> 6) & kM3) << 4);
  const uint32_t mins_lo = u[1] & kM1;
  u[1] = (u[2] & kM2) | (((u[0] >> 6) & kM3) << 4);
  u[2] = mins_lo;
  u[0] &= kM1;
  return _mm256_cvtepu8_epi16(_mm_setr_epi32(u[0], u[1], u[2], u[3]));
}

// q4_K and q5_K share d, dmin and the packed scales.
inline void ScalesK4(ggml_half d, ggml_half dmin, const uint8_t* scales, __m256i* sc, __m256i* mn, float* d1,
                     float* d2) {
  const __m256i sm = ScalesMinsK4(scales);
  *sc = Dup16(_mm256_castsi256_si128(sm));  // a 32-group is two 16-groups
  *mn = Dup16(_mm256_extracti128_si256(sm, 1));
  *d1 = Half(d);
  *d2 = -Half(dmin);
}

template <> struct KQ<GgmlType::kQ4_K> {
  using Block = block_q4_K;
  static constexpr bool kFoldMins = false;
  static void Scales(const Block& b, __m256i* sc, __m256i* mn, float* d1, float* d2) {
    ScalesK4(b.d, b.dmin, b.scales, sc, mn, d1, d2);
  }
  static __m256i Chunk(const Block& b, int k) { return ShiftMask(Load32(b.qs + 32 * (k / 2)), 4 * (k & 1), 0x0F); }
};

template <> struct KQ<GgmlType::kQ5_K> {
  using Block = block_q5_K;
  static constexpr bool kFoldMins = false;
  static void Scales(const Block& b, __m256i* sc, __m256i* mn, float* d1, float* d2) {
    ScalesK4(b.d, b.dmin, b.scales, sc, mn, d1, d2);
  }
  static __m256i Chunk(const Block& b, int k) {  // 5th bit: bit k of qh[l]
    return _mm256_or_si256(ShiftMask(Load32(b.qs + 32 * (k / 2)), 4 * (k & 1), 0x0F), BitTo(Load32(b.qh), k, 4));
  }
};

template <> struct KQ<GgmlType::kQ6_K> {
  using Block = block_q6_K;
  static constexpr bool kFoldMins = true;  // d1 == d2
  static void Scales(const Block& b, __m256i* sc, __m256i* mn, float* d1, float* d2) {
    *sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    *mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(*sc, 5));  // (q - 32)
    *d1 = *d2 = Half(b.d);
  }
  // Quarter q of half h: ql[64h + 32(q&1)] nibble q>>1, qh[32h] bits 2q, 2q+1.
  static __m256i Chunk(const Block& b, int k) {
    const int h = k / 4, q = k % 4;
    const __m256i lo = ShiftMask(Load32(b.ql + 64 * h + 32 * (q & 1)), 4 * (q >> 1), 0x0F);
    const __m256i hi = _mm256_sll_epi16(ShiftMask(Load32(b.qh + 32 * h), 2 * q, 0x03), _mm_cvtsi32_si128(4));
    return _mm256_or_si256(lo, hi);
  }
};

template <> struct KQ<GgmlType::kQ3_K> {
  using Block = block_q3_K;
  static constexpr bool kFoldMins = true;  // d1 == d2
  static void Scales(const Block& b, __m256i* sc, __m256i* mn, float* d1, float* d2) {
    uint32_t a[4];
    std::memcpy(a, b.scales, 12);
    constexpr uint32_t kM1 = 0x03030303, kM2 = 0x0f0f0f0f;
    const uint32_t tmp = a[2];
    a[2] = ((a[0] >> 4) & kM2) | (((tmp >> 4) & kM1) << 4);
    a[3] = ((a[1] >> 4) & kM2) | (((tmp >> 6) & kM1) << 4);
    a[0] = (a[0] & kM2) | (((tmp >> 0) & kM1) << 4);
    a[1] = (a[1] & kM2) | (((tmp >> 2) & kM1) << 4);
    *sc = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_setr_epi32(a[0], a[1], a[2], a[3])), _mm256_set1_epi16(32));
    *mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(*sc, 2));  // (u - 4)
    *d1 = *d2 = Half(b.d);
  }
  static __m256i Chunk(const Block& b, int k) {  // 2 bits at 2(k%4) of qs[32(k/4)], hmask bit k
    return _mm256_or_si256(ShiftMask(Load32(b.qs + 32 * (k / 4)), 2 * (k % 4), 0x03), BitTo(Load32(b.hmask), k, 2));
  }
};

template <> struct KQ<GgmlType::kQ2_K> {
  using Block = block_q2_K;
  static constexpr bool kFoldMins = false;
  static void Scales(const Block& b, __m256i* sc, __m256i* mn, float* d1, float* d2) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    *sc = _mm256_cvtepu8_epi16(_mm_and_si128(s, m4));
    *mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
    *d1 = Half(b.d);
    *d2 = -Half(b.dmin);
  }
  static __m256i Chunk(const Block& b, int k) { return ShiftMask(Load32(b.qs + 32 * (k / 4)), 2 * (k % 4), 0x03); }
};

template <GgmlType kType, int R, int T>
void KKernel(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
             int64_t ldy) {
  using Q = KQ<kType>;
  using Block = typename Q::Block;
  const int64_t nb = n / kQK_K;
  const Block* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const Block*>(w + r * w_stride);
  const block_q8_K* xb[T];
  for (int t = 0; t < T; ++t) xb[t] = reinterpret_cast<const block_q8_K*>(x + t * x_stride);
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();

  for (int64_t i = 0; i < nb; ++i) {  // hot loop
    for (int r = 0; r < R; ++r) PrefetchNextRows<R, T>(wr[r] + i, w_stride, sizeof(Block));
    alignas(32) int16_t sc[R][16];
    __m256i mn[R];
    float d1[R], d2[R];
    for (int r = 0; r < R; ++r) {
      __m256i s;
      Q::Scales(wr[r][i], &s, &mn[r], &d1[r], &d2[r]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(sc[r]), s);
    }
    __m256i isum[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) isum[r][t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      __m256i u[R], scv[R];
      for (int r = 0; r < R; ++r) {
        u[r] = Q::Chunk(wr[r][i], k);
        scv[r] = _mm256_set_m128i(_mm_set1_epi16(sc[r][2 * k + 1]), _mm_set1_epi16(sc[r][2 * k]));
      }
      for (int t = 0; t < T; ++t) {
        const __m256i xv = Load32(reinterpret_cast<const uint8_t*>(xb[t][i].qs) + 32 * k);
        for (int r = 0; r < R; ++r) {
          isum[r][t] = _mm256_add_epi32(isum[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(u[r], xv), scv[r]));
        }
      }
    }
    for (int t = 0; t < T; ++t) {
      const float dx = xb[t][i].d;
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[t][i].bsums));
      for (int r = 0; r < R; ++r) {
        if constexpr (Q::kFoldMins) {
          isum[r][t] = _mm256_add_epi32(isum[r][t], _mm256_madd_epi16(mn[r], bs));
        } else {
          const __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(mn[r], bs));
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d2[r] * dx), mins, acc[r][t]);
        }
        acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d1[r] * dx), _mm256_cvtepi32_ps(isum[r][t]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = HSum(acc[r][t]);
}

template <GgmlType kType>
struct KK {
  template <int R, int T>
  struct K {
    static void Run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
      KKernel<kType, R, T>(n, w, ws, x, xs, y, ldy);
    }
  };
};

template <GgmlType kType>
void TileK(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y,
           int64_t ldy) {
  WalkTile<KK<kType>::template K, 2, 2, 2>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

}  // namespace

TileFn Avx2KTile(GgmlType type) {
  switch (type) {
    case GgmlType::kQ2_K: return &TileK<GgmlType::kQ2_K>;
    case GgmlType::kQ3_K: return &TileK<GgmlType::kQ3_K>;
    case GgmlType::kQ4_K: return &TileK<GgmlType::kQ4_K>;
    case GgmlType::kQ5_K: return &TileK<GgmlType::kQ5_K>;
    case GgmlType::kQ6_K: return &TileK<GgmlType::kQ6_K>;
    default: return Avx2IqTile(type);
  }
}

}  // namespace llmesh::engine::internal
