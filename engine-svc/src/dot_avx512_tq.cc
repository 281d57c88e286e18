// AVX-512 (BW + VNNI) dot products of the ternary types (tq1_0, tq2_0) with
// q8_K activations. A weight is d * (t - 1) with t in {0, 1, 2}, so
//
//   dot(block) = d * dx * (sum_i t_i * xq_i - sum_i xq_i)
//
// and no real multiply is needed: the trits are unpacked to bytes and fed to
// vpdpbusd (u8 x s8) against the activations, whose sum comes free from
// q8_K's per-16 sums and seeds the integer accumulator. Unpacking is the work:
//   tq2_0: 2-bit fields, a shift and a mask (as q2_K's quants).
//   tq1_0: 5 trits per byte as a base-3 fraction (quants_tq.cc). Trit n is
//          the top trit of m = byte * 3^n mod 256, i.e. (m >= 86) + (m >= 171).
//          Bytes are multiplied in 16-bit lanes, once for the even bytes and
//          once for the odd ones (the carry out of the low byte spoils the
//          high one); each 64-element chunk gathers its source bytes with a
//          dword permute so one multiply covers it.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels.h"

namespace llmesh::engine::internal {
namespace {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")

inline float Half(ggml_half h) { return _cvtsh_ss(h); }

template <GgmlType kType> struct TQ;

template <> struct TQ<GgmlType::kTQ2_0> {
  using Block = block_tq2_0;
  // Chunk c holds elements 64c..64c+63: bits 4(c&1) (low 32 bytes) and
  // 4(c&1)+2 (high 32) of qs[32(c/2) ..].
  static void Decode(const Block& b, __m512i u[4]) {
    const __m512i mask = _mm512_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h)));
      u[2 * h] = _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0)), mask);
      u[2 * h + 1] = _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4)), mask);
    }
  }
};

// Per chunk of tq1_0: the dwords of the block (qs 0..11, qh 12) each lane
// reads, and the power of 3 each 16-bit lane multiplies by.
struct Tq1Table {
  alignas(64) int32_t src[4][16];
  alignas(64) int16_t pow3[4][32];
  constexpr Tq1Table() : src(), pow3() {
    // byte ranges [from, to) of a chunk -> (first source dword, power of 3)
    struct Run { int from, to, dword, pow; };
    constexpr Run kRuns[4][7] = {
        {{0, 32, 0, 1}, {32, 64, 0, 3}},                 // elements   0..63:  qs[0..32) trits 0, 1
        {{0, 32, 0, 9}, {32, 64, 0, 27}},                // elements  64..127: trits 2, 3
        {{0, 32, 0, 81}, {32, 48, 8, 1}, {48, 64, 8, 3}},  // 128..159 trit 4; qs[32..48) trits 0, 1
        {{0, 16, 8, 9}, {16, 32, 8, 27}, {32, 48, 8, 81},  // 192..239: qs[32..48) trits 2, 3, 4
         {48, 52, 12, 1}, {52, 56, 12, 3}, {56, 60, 12, 9}, {60, 64, 12, 27}},  // 240..255: qh trits 0..3
    };
    for (int c = 0; c < 4; ++c) {
      for (const Run& r : kRuns[c]) {
        for (int byte = r.from; byte < r.to; ++byte) {
          if (byte % 4 == 0) src[c][byte / 4] = r.dword + (byte - r.from) / 4;
          if (byte % 2 == 0) pow3[c][byte / 2] = static_cast<int16_t>(r.pow);
        }
      }
    }
  }
};
constexpr Tq1Table kTq1;

template <> struct TQ<GgmlType::kTQ1_0> {
  using Block = block_tq1_0;
  static void Decode(const Block& b, __m512i u[4]) {
    // qs and qh (52 bytes); the masked load never reads past the block.
    const __m512i raw = _mm512_maskz_loadu_epi8((1ull << 52) - 1, &b);
    const __m512i hi_bytes = _mm512_set1_epi16(static_cast<int16_t>(0xFF00));
    const __m512i one = _mm512_set1_epi8(1), two = _mm512_set1_epi8(2);
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_permutexvar_epi32(_mm512_load_si512(kTq1.src[c]), raw);
      const __m512i p = _mm512_load_si512(kTq1.pow3[c]);
      const __m512i lo = _mm512_mullo_epi16(v, p);
      const __m512i hi = _mm512_mullo_epi16(_mm512_and_si512(v, hi_bytes), p);
      const __m512i m = _mm512_mask_blend_epi8(0xAAAAAAAAAAAAAAAAull, lo, hi);
      const __mmask64 ge1 = _mm512_cmpge_epu8_mask(m, _mm512_set1_epi8(86));
      const __mmask64 ge2 = _mm512_cmpge_epu8_mask(m, _mm512_set1_epi8(static_cast<char>(171)));
      u[c] = _mm512_mask_mov_epi8(_mm512_maskz_mov_epi8(ge1, one), ge2, two);
    }
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
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const __m512i minus_one = _mm512_set1_epi16(-1);

  for (int64_t i = 0; i < nb; ++i) {  // hot loop
    __m512i u[R][4];
    for (int r = 0; r < R; ++r) {
      PrefetchNextRows<R, T>(wr[r] + i, w_stride, sizeof(Block));
      Q::Decode(wr[r][i], u[r]);
    }
    for (int t = 0; t < T; ++t) {
      // -sum(xq) spread over 8 lanes: the "- 1" of every weight.
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[t][i].bsums));
      const __m512i neg_sum = _mm512_madd_epi16(_mm512_zextsi256_si512(bs), minus_one);
      __m512i isum[R];
      for (int r = 0; r < R; ++r) isum[r] = neg_sum;
      for (int c = 0; c < 4; ++c) {
        const __m512i xv = _mm512_loadu_si512(xb[t][i].qs + 64 * c);
        for (int r = 0; r < R; ++r) isum[r] = _mm512_dpbusd_epi32(isum[r], u[r][c], xv);
      }
      for (int r = 0; r < R; ++r) {
        const __m512 scale = _mm512_set1_ps(Half(wr[r][i].d) * xb[t][i].d);
        acc[r][t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum[r]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
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
  WalkTile<TqK<kType>::template K, 2, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

}  // namespace

TileFn Avx512VnniTqTile(GgmlType type) {
  switch (type) {
    case GgmlType::kTQ1_0: return &TileTq<GgmlType::kTQ1_0>;
    case GgmlType::kTQ2_0: return &TileTq<GgmlType::kTQ2_0>;
    default: return nullptr;
  }
}

}  // namespace llmesh::engine::internal
