// AVX-512 (BW + VNNI) dot products of the K-quants (q2_K .. q6_K) with q8_K
// activations, as ggml does them:
//
//   dot(super-block) = dx * (d1 * sum_g sc_g * sum_{i in g} u_i * xq_i
//                          + d2 * sum_g mn_g * bsum_g)
//
// u are the unsigned quants (0..63), sc the integer scale of group g (16 or
// 32 elements), and the second term folds each type's offset or min into the
// activation's per-16 sums (q8_K bsums), so the hot loop never subtracts
// (where d1 == d2 that term joins the integer sum):
//   q2_K: d1 = d, sc = scales & 15;  d2 = -dmin, mn = scales >> 4
//   q3_K: d1 = d, sc = scale6 - 32;  d2 = d,     mn = -4 * sc
//   q4_K: d1 = d, sc = 6-bit scale;  d2 = -dmin, mn = 6-bit min   (per 32)
//   q5_K: as q4_K, u with a 5th bit
//   q6_K: d1 = d, sc = int8 scale;   d2 = d,     mn = -32 * sc
// 64 elements per step: vpmaddubsw (u8 x s8 pairs -> s16, no saturation since
// u <= 63 and |xq| <= 127) then vpdpwssd against the group scales widened to
// s16 (one permute per chunk); the integer sum of a super-block stays exact
// in int32 and is scaled once.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels.h"

namespace llmesh::engine::internal {
namespace {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")

inline float Half(ggml_half h) { return _cvtsh_ss(h); }

// vpermw index spreading the 16 group scales over chunk c's 32 s16 lanes
// (each lane = 2 elements): groups of 16 elements (per16) or of 32.
struct ScaleIdx {
  alignas(64) int16_t v[2][4][32];
  constexpr ScaleIdx() : v() {
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        v[0][c][l] = static_cast<int16_t>(4 * c + l / 8);  // per 16
        v[1][c][l] = static_cast<int16_t>(2 * c + l / 16);  // per 32
      }
  }
};
constexpr ScaleIdx kScaleIdx;

// 32 bytes broadcast to both halves of a zmm.
inline __m512i Bcast256(const uint8_t* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// The byte mask of bit `lo` (low 32 bytes) / bit `hi` (high 32 bytes) of v.
inline __mmask64 TestBits(__m512i v, int lo, int hi) {
  const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << lo)),
                                         _mm256_set1_epi8(static_cast<char>(1 << hi)), 1);
  return _mm512_test_epi8_mask(v, sel);
}
// (v >> lo) in the low 32 bytes, (v >> hi) in the high ones, masked to `mask`.
inline __m512i ShiftHalves(__m512i v, int lo, int hi, int mask) {
  const __m512i sh = _mm512_set_epi64(hi, hi, hi, hi, lo, lo, lo, lo);
  return _mm512_and_si512(_mm512_srlv_epi64(v, sh), _mm512_set1_epi8(static_cast<char>(mask)));
}

// Per-type decoding. Scales(): the 16 s16 group scales (sc, in the low 256
// bits), the 16 per-16 offsets mn, d1 and d2. Chunk(c): elements
// 64c .. 64c+63 as unsigned bytes in element order.
template <GgmlType kType> struct KQ;

// 12 packed bytes -> [sc0..sc7, m0..m7] (ggml's kmask unpacking).
inline __m256i ScalesMinsK4(const uint8_t* scales) {
  uint32_t u[4];
  std::memcpy(u, scales, 12);
  constexpr uint32_t kM1 = 0x3f3f3f3f, kM2 = 0x0f0f0f0f, kM3 = 0x03030303;
  u[3] = ((u[2] >> 4) & kM2) | (((u[1] >> 6) & kM3) << 4);
  const uint32_t mins_lo = u[1] & kM1;
  u[1] = (u[2] & kM2) | (((u[0] >> 6) & kM3) << 4);
  u[2] = mins_lo;
  u[0] &= kM1;
  // bytes: sc0..3 | sc4..7 | m0..3 | m4..7
  return _mm256_cvtepu8_epi16(_mm_setr_epi32(u[0], u[1], u[2], u[3]));
}

// q4_K and q5_K share d, dmin and the packed scales; the min of 32-group j
// applies to bsums 2j and 2j+1.
inline void ScalesK4(ggml_half d, ggml_half dmin, const uint8_t* scales, __m512i* sc, __m256i* mn, float* d1,
                     float* d2) {
  const __m256i sm = ScalesMinsK4(scales);
  *sc = _mm512_castsi256_si512(sm);
  *mn = _mm256_permutexvar_epi16(_mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15), sm);
  *d1 = Half(d);
  *d2 = -Half(dmin);
}

template <> struct KQ<GgmlType::kQ4_K> {
  using Block = block_q4_K;
  static constexpr bool kPer32 = true, kFoldMins = false;
  static void Scales(const Block& b, __m512i* sc, __m256i* mn, float* d1, float* d2) {
    ScalesK4(b.d, b.dmin, b.scales, sc, mn, d1, d2);
  }
  // 32 bytes of qs: low nibbles are elements 64c.., high nibbles 64c+32..
  static __m512i Chunk(const Block& b, int c) { return ShiftHalves(Bcast256(b.qs + 32 * c), 0, 4, 0x0F); }
};

template <> struct KQ<GgmlType::kQ5_K> {
  using Block = block_q5_K;
  static constexpr bool kPer32 = true, kFoldMins = false;
  static void Scales(const Block& b, __m512i* sc, __m256i* mn, float* d1, float* d2) {
    ScalesK4(b.d, b.dmin, b.scales, sc, mn, d1, d2);
  }
  // 5th bit of element 32j + l is bit j of qh[l].
  static __m512i Chunk(const Block& b, int c) {
    const __m512i u = ShiftHalves(Bcast256(b.qs + 32 * c), 0, 4, 0x0F);
    const __mmask64 hi = TestBits(Bcast256(b.qh), 2 * c, 2 * c + 1);
    return _mm512_mask_add_epi8(u, hi, u, _mm512_set1_epi8(0x10));
  }
};

template <> struct KQ<GgmlType::kQ6_K> {
  using Block = block_q6_K;
  static constexpr bool kPer32 = false, kFoldMins = true;
  static void Scales(const Block& b, __m512i* sc, __m256i* mn, float* d1, float* d2) {
    const __m256i s = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    *sc = _mm512_castsi256_si512(s);
    *mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s, 5));  // (q - 32)
    *d1 = *d2 = Half(b.d);
  }
  // Half h = c/2 of the super-block: ql[64h ..] low nibbles are quarters 0,1
  // (chunk 2h), high nibbles quarters 2,3 (chunk 2h+1); the top 2 bits of
  // quarter k are bits 2k, 2k+1 of qh[32h + l].
  static __m512i Chunk(const Block& b, int c) {
    const int h = c / 2;
    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
    const __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi64(qh, 2), 1);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x30);
    if (c & 1) {
      return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi64(ql, 4), m4), _mm512_and_si512(qh2, m2));
    }
    return _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_slli_epi64(qh2, 4), m2));
  }
};

// Byte e%32 of qs[32h ..] (h = e/128) holds 4 elements, 2 bits each: the
// chunk c = 2h + odd takes shifts 4*odd and 4*odd + 2.
inline __m512i TwoBits(const uint8_t* qs, int c) {
  const int h = c / 2, s = 4 * (c & 1);
  return ShiftHalves(Bcast256(qs + 32 * h), s, s + 2, 0x03);
}

template <> struct KQ<GgmlType::kQ3_K> {
  using Block = block_q3_K;
  static constexpr bool kPer32 = false, kFoldMins = true;
  static void Scales(const Block& b, __m512i* sc, __m256i* mn, float* d1, float* d2) {
    uint32_t a[4];
    std::memcpy(a, b.scales, 12);
    constexpr uint32_t kM1 = 0x03030303, kM2 = 0x0f0f0f0f;
    const uint32_t tmp = a[2];
    a[2] = ((a[0] >> 4) & kM2) | (((tmp >> 4) & kM1) << 4);
    a[3] = ((a[1] >> 4) & kM2) | (((tmp >> 6) & kM1) << 4);
    a[0] = (a[0] & kM2) | (((tmp >> 0) & kM1) << 4);
    a[1] = (a[1] & kM2) | (((tmp >> 2) & kM1) << 4);
    const __m256i s = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_setr_epi32(a[0], a[1], a[2], a[3])),
                                       _mm256_set1_epi16(32));
    *sc = _mm512_castsi256_si512(s);
    *mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s, 2));  // (u - 4)
    *d1 = *d2 = Half(b.d);
  }
  // u = 2 low bits | hmask bit << 2; hmask bit e/32 of byte e%32.
  static __m512i Chunk(const Block& b, int c) {
    const __m512i u = TwoBits(b.qs, c);
    const __mmask64 hi = TestBits(Bcast256(b.hmask), 2 * c, 2 * c + 1);
    return _mm512_mask_add_epi8(u, hi, u, _mm512_set1_epi8(0x04));
  }
};

template <> struct KQ<GgmlType::kQ2_K> {
  using Block = block_q2_K;
  static constexpr bool kPer32 = false, kFoldMins = false;
  static void Scales(const Block& b, __m512i* sc, __m256i* mn, float* d1, float* d2) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    *sc = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(s, m4)));
    *mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
    *d1 = Half(b.d);
    *d2 = -Half(b.dmin);
  }
  static __m512i Chunk(const Block& b, int c) { return TwoBits(b.qs, c); }
};

// R weight rows x T activation rows, one 256-element super-block per step.
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
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();

  for (int64_t i = 0; i < nb; ++i) {  // hot loop
    for (int r = 0; r < R; ++r) PrefetchNextRows<R, T>(wr[r] + i, w_stride, sizeof(Block));
    __m512i sc[R];
    __m256i mn[R];
    float d1[R], d2[R];
    for (int r = 0; r < R; ++r) Q::Scales(wr[r][i], &sc[r], &mn[r], &d1[r], &d2[r]);
    __m512i isum[R][T];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i idx = _mm512_load_si512(kScaleIdx.v[Q::kPer32][c]);
      __m512i u[R], scv[R];
      for (int r = 0; r < R; ++r) {
        u[r] = Q::Chunk(wr[r][i], c);
        scv[r] = _mm512_permutexvar_epi16(idx, sc[r]);
      }
      for (int t = 0; t < T; ++t) {
        const __m512i xv = _mm512_loadu_si512(xb[t][i].qs + 64 * c);
        for (int r = 0; r < R; ++r) {
          const __m512i p = _mm512_maddubs_epi16(u[r], xv);
          isum[r][t] = c == 0 ? _mm512_madd_epi16(p, scv[r]) : _mm512_dpwssd_epi32(isum[r][t], p, scv[r]);
        }
      }
    }
    for (int t = 0; t < T; ++t) {
      const float dx = xb[t][i].d;
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[t][i].bsums));
      for (int r = 0; r < R; ++r) {
        if constexpr (Q::kFoldMins) {  // d1 == d2: the offsets join the integer sum
          isum[r][t] = _mm512_dpwssd_epi32(isum[r][t], _mm512_zextsi256_si512(mn[r]), _mm512_zextsi256_si512(bs));
        } else {
          const __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(mn[r], bs));
          acc[r][t] = _mm512_fmadd_ps(_mm512_set1_ps(d2[r] * dx), _mm512_zextps256_ps512(mins), acc[r][t]);
        }
        acc[r][t] = _mm512_fmadd_ps(_mm512_set1_ps(d1[r] * dx), _mm512_cvtepi32_ps(isum[r][t]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
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
  WalkTile<KK<kType>::template K, 2, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

}  // namespace

TileFn Avx512VnniKTile(GgmlType type) {
  switch (type) {
    case GgmlType::kQ2_K: return &TileK<GgmlType::kQ2_K>;
    case GgmlType::kQ3_K: return &TileK<GgmlType::kQ3_K>;
    case GgmlType::kQ4_K: return &TileK<GgmlType::kQ4_K>;
    case GgmlType::kQ5_K: return &TileK<GgmlType::kQ5_K>;
    case GgmlType::kQ6_K: return &TileK<GgmlType::kQ6_K>;
    default: return Avx512VnniIqTile(type);
  }
}

}  // namespace llmesh::engine::internal
