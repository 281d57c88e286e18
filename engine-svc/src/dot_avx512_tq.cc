// AVX-512 (BW + VNNI) dot products of the ternary types (tq1_0, tq2_0) with
// q8_K activations. A weight is d * (t - 1) with t in {0, 1, 2}, so
//
//   dot(block) = d * dx * (sum_i t_i * xq_i - sum_i xq_i)
//
// and no real multiply is needed: the trits are unpacked to bytes and fed to
// vpdpbusd (u8 x s8) against the activations, whose sum comes free from
// q8_K's per-16 sums and seeds the integer accumulator. Unpacking is the work:
//   tq2_0: 2-bit fields, a shift and a mask (as q2_K's quants).
//   tq1_0: 5 trits per byte as a base-3 fraction (quants_tq.cc): trit n of
//          byte b is the top trit of m = b * 3^n mod 256, i.e. (m * 3) >> 8.
//          With b zero-extended to 16 bits both steps are one instruction:
//          b * (3^n << 8) keeps exactly m << 8, and its high half times 3 is
//          the trit. Two such vectors of 32 trits pack to one of 64 bytes
//          (vpackuswb, per 128-bit lane), so the activations of that chunk
//          are permuted by qwords to match.
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

// Per type: Chunk(block, c) gives 64 trits as bytes; the activations of
// chunk c are elements 64c..64c+63, permuted by kActPerm when set.
template <GgmlType kType> struct TQ;

template <> struct TQ<GgmlType::kTQ2_0> {
  using Block = block_tq2_0;
  static constexpr bool kActPerm = false;
  // Elements 64c..64c+63: bits 4(c&1) (low 32 bytes) and 4(c&1)+2 (high 32)
  // of qs[32(c/2) ..].
  static __m512i Chunk(const Block& b, int c) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * (c / 2))));
    const int s = 4 * (c & 1);
    return _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_set_epi64(s + 2, s + 2, s + 2, s + 2, s, s, s, s)),
                            _mm512_set1_epi8(3));
  }
};

// 3^n << 8 per 16-bit lane (see the header).
constexpr int16_t kPow3Hi[5] = {1 << 8, 3 << 8, 9 << 8, 27 << 8, 81 << 8};

struct Tq1Pow3 {
  alignas(64) int16_t lo_hi[2][32];  // qs[32..48) twice: trits (0, 1), (2, 3)
  alignas(64) int16_t tail[32];      // qs[32..48) trit 4 | qh trits 0..3 (4 bytes each)
  constexpr Tq1Pow3() : lo_hi(), tail() {
    for (int l = 0; l < 32; ++l) {
      lo_hi[0][l] = kPow3Hi[l / 16];
      lo_hi[1][l] = kPow3Hi[2 + l / 16];
      tail[l] = l < 16 ? kPow3Hi[4] : kPow3Hi[(l - 16) / 4];
    }
  }
};
constexpr Tq1Pow3 kTq1;

template <> struct TQ<GgmlType::kTQ1_0> {
  using Block = block_tq1_0;
  static constexpr bool kActPerm = true;
  // The top trits of 32 zero-extended bytes w times pow (3^n << 8 per lane).
  static __m512i Trits(__m512i w, __m512i pow) {
    // Opaque to GCC, which would otherwise turn the multiply by a uniform
    // constant into twice as many shifts and adds.
    __asm__("" : "+v"(pow));
    return _mm512_mulhi_epu16(_mm512_mullo_epi16(w, pow), _mm512_set1_epi16(3));
  }
  static __m512i Widen(__m256i bytes) { return _mm512_cvtepu8_epi16(bytes); }
  // Chunk c packs two vectors of 32 trits, elements 64c..64c+31 and
  // 64c+32..64c+63 (quants_tq.cc's element order):
  //   0: qs[0..32) trits 0 | 1          1: trits 2 | 3
  //   2: qs[0..32) trit 4 | qs[32..48) trits 0, 1
  //   3: qs[32..48) trits 2, 3 | qs[32..48) trit 4, qh trits 0..3
  static __m512i Chunk(const Block& b, int c) {
    const __m256i head = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    const __m128i tail = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 32));
    const __m512i tail2 = Widen(_mm256_broadcastsi128_si256(tail));
    if (c < 2) {
      const __m512i w = Widen(head);
      return _mm512_packus_epi16(Trits(w, _mm512_set1_epi16(kPow3Hi[2 * c])),
                                 Trits(w, _mm512_set1_epi16(kPow3Hi[2 * c + 1])));
    }
    if (c == 2) {
      return _mm512_packus_epi16(Trits(Widen(head), _mm512_set1_epi16(kPow3Hi[4])),
                                 Trits(tail2, _mm512_load_si512(kTq1.lo_hi[0])));
    }
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    const __m512i tail_qh = Widen(_mm256_inserti128_si256(_mm256_castsi128_si256(tail),
                                                          _mm_set1_epi32(static_cast<int>(qh)), 1));
    return _mm512_packus_epi16(Trits(tail2, _mm512_load_si512(kTq1.lo_hi[1])),
                               Trits(tail_qh, _mm512_load_si512(kTq1.tail)));
  }
};

// R weight rows x T activation rows, one 256-element block per step, one
// 64-element chunk at a time (few registers live at once).
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
  // vpackuswb's order: qword 2l from the first vector's lane l, 2l+1 from the second's.
  const __m512i act_perm = _mm512_set_epi64(7, 3, 6, 2, 5, 1, 4, 0);

  for (int64_t i = 0; i < nb; ++i) {  // hot loop
    for (int r = 0; r < R; ++r) PrefetchNextRows<R, T>(wr[r] + i, w_stride, sizeof(Block));
    __m512i isum[R][T];
    for (int t = 0; t < T; ++t) {
      // -sum(xq) spread over 8 lanes: the "- 1" of every weight.
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[t][i].bsums));
      const __m512i neg_sum = _mm512_madd_epi16(_mm512_zextsi256_si512(bs), minus_one);
      for (int r = 0; r < R; ++r) isum[r][t] = neg_sum;
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      __m512i xv[T];
      for (int t = 0; t < T; ++t) {
        xv[t] = _mm512_loadu_si512(xb[t][i].qs + 64 * c);
        if constexpr (Q::kActPerm) xv[t] = _mm512_permutexvar_epi64(act_perm, xv[t]);
      }
      for (int r = 0; r < R; ++r) {
        const __m512i u = Q::Chunk(wr[r][i], c);
        for (int t = 0; t < T; ++t) isum[r][t] = _mm512_dpbusd_epi32(isum[r][t], u, xv[t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      const float d = Half(wr[r][i].d);
      for (int t = 0; t < T; ++t) {
        const __m512 scale = _mm512_set1_ps(d * xb[t][i].d);
        acc[r][t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum[r][t]), acc[r][t]);
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
