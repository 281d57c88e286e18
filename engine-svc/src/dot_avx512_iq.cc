// AVX-512 VNNI row-major kernels of iq4_nl and iq4_xs against kQ8
// activations (why kQ8 for iq4_xs: dot_avx2_iq.cc). Packed weights, which
// batches and decode use where a matrix has whole 16-row groups, are in
// dot_avx512_packed.cc; these serve the other matrices.
//
// vpdpbusd wants an unsigned operand: the grid lookup (one vpshufb per 64
// nibbles) yields u = grid + 128 in 1..241, and
//   sum(grid * xq) = sum(u * xq) - 128 * sum(xq),
// the second term from the activation's per-block s = dx * sum(xq), once per
// block as the q4_0 kernel does with its -8.
//
// A step is 8 blocks (256 elements, an iq4_xs superblock): the 8 block
// scales are gathered into one vector, multiplied by the 8 activation scales
// and spread over the dpbusd lanes with a permute per 4 blocks.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels.h"

namespace llmesh::engine::internal {
namespace {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")

constexpr int kStep = 8;  // blocks of 32 per step

// The grid biased by 128, as unsigned bytes, in every 128-bit lane.
inline __m512i BiasedGrid() {
  const __m128i g = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl));
  return _mm512_broadcast_i32x4(_mm_xor_si128(g, _mm_set1_epi8(static_cast<char>(0x80))));
}

// 4 blocks' 16 nibble bytes (one block per 128-bit lane) -> grid bytes of
// elements 0..15 (lo) and 16..31 (hi) of each block.
inline void Lookup4(__m512i v, __m512i grid, __m512i* lo, __m512i* hi) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  *lo = _mm512_shuffle_epi8(grid, _mm512_and_si512(v, m4));
  *hi = _mm512_shuffle_epi8(grid, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
}

// Step s of a row: blocks 8s .. 8s+7 as two Lookup4 quads, and their 8
// weight scales.
template <GgmlType kType> struct Iq4Step;
template <> struct Iq4Step<GgmlType::kIQ4_NL> {
  static constexpr int kBytes = kStep * sizeof(block_iq4_nl);
  static __m256 Decode(const uint8_t* row, int64_t s, __m512i grid, __m512i lo[2], __m512i hi[2]) {
    const auto* b = reinterpret_cast<const block_iq4_nl*>(row) + s * kStep;
    for (int q = 0; q < 2; ++q) {
      __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[4 * q].qs)));
      for (int j = 1; j < 4; ++j)
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[4 * q + j].qs)), j);
      Lookup4(v, grid, &lo[q], &hi[q]);
    }
    // The d of block i is word 9i of the step's first 128 bytes (of 144).
    const uint8_t* p = reinterpret_cast<const uint8_t*>(b);
    const __m512i idx = _mm512_setr_epi64(0x001B001200090000, 0x003F0036002D0024, 0, 0, 0, 0, 0, 0);
    const __m512i heads = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx, _mm512_loadu_si512(p + 64));
    return _mm256_cvtph_ps(_mm512_castsi512_si128(heads));
  }
};
template <> struct Iq4Step<GgmlType::kIQ4_XS> {
  static constexpr int kBytes = sizeof(block_iq4_xs);
  static __m256 Decode(const uint8_t* row, int64_t s, __m512i grid, __m512i lo[2], __m512i hi[2]) {
    const block_iq4_xs& b = reinterpret_cast<const block_iq4_xs*>(row)[s];
    for (int q = 0; q < 2; ++q) Lookup4(_mm512_loadu_si512(b.qs + 64 * q), grid, &lo[q], &hi[q]);
    // Scale i: bits 4i..4i+3 of scales_l (read as one little-endian word)
    // and bits 2i, 2i+1 of scales_h.
    uint32_t sl;
    std::memcpy(&sl, b.scales_l, 4);
    const __m256i l = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(sl)),
                                                         _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                       _mm256_set1_epi32(0xF));
    const __m256i h = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(b.scales_h),
                                                         _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                       _mm256_set1_epi32(3));
    const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(l, _mm256_slli_epi32(h, 4)), _mm256_set1_epi32(32));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b.d)), _mm256_cvtepi32_ps(ls));
  }
};

// R weight rows x T activation rows.
template <GgmlType kType, int R, int T>
void Iq4Kernel(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
               int64_t ldy) {
  using S = Iq4Step<kType>;
  const int64_t nb = n / kQK, ns = nb / kStep;
  const __m512i grid = BiasedGrid();
  // Lane l of quad q's dpbusd belongs to block 4q + l/4.
  const __m512i sel[2] = {_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                          _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7)};
  const int8_t* xq[T];
  const float *xd[T], *xs[T];
  for (int t = 0; t < T; ++t) {
    xq[t] = Q8Qs(x + t * x_stride);
    xd[t] = Q8D(x + t * x_stride, n);
    xs[t] = Q8S(x + t * x_stride, n);
  }
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();

  for (int64_t s = 0; s < ns; ++s) {  // hot loop
    __m512i lo[R][2], hi[R][2];
    __m256 dw[R], cw[R];
    for (int r = 0; r < R; ++r) {
      PrefetchNextRows<R, T>(w + r * w_stride + s * S::kBytes, w_stride, S::kBytes);
      dw[r] = S::Decode(w + r * w_stride, s, grid, lo[r], hi[r]);
      cw[r] = _mm256_mul_ps(dw[r], _mm256_set1_ps(-128.0f));
    }
    for (int t = 0; t < T; ++t) {
      const __m256 dx = _mm256_loadu_ps(xd[t] + s * kStep);
      const __m512 sx = _mm512_zextps256_ps512(_mm256_loadu_ps(xs[t] + s * kStep));
      __m512i xlo[2], xhi[2];
      for (int q = 0; q < 2; ++q) {
        // 128 activations: lanes [b.0-15, b+1.0-15, ...] and [b.16-31, ...]
        const int8_t* p = xq[t] + (s * kStep + 4 * q) * kQK;
        const __m512i a = _mm512_loadu_si512(p), c = _mm512_loadu_si512(p + 64);
        xlo[q] = _mm512_shuffle_i64x2(a, c, _MM_SHUFFLE(2, 0, 2, 0));
        xhi[q] = _mm512_shuffle_i64x2(a, c, _MM_SHUFFLE(3, 1, 3, 1));
      }
      for (int r = 0; r < R; ++r) {
        // The bias terms: any lane will do, all are summed.
        acc[r][t] = _mm512_fmadd_ps(_mm512_zextps256_ps512(cw[r]), sx, acc[r][t]);
        const __m512 ds = _mm512_zextps256_ps512(_mm256_mul_ps(dw[r], dx));
        for (int q = 0; q < 2; ++q) {
          const __m512i dp =
              _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[r][q], xlo[q]), hi[r][q], xhi[q]);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_permutexvar_ps(sel[q], ds), acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float sum = _mm512_reduce_add_ps(acc[r][t]);
      // iq4_nl rows of a block count not a multiple of 8 (iq4_xs has none)
      for (int64_t b = ns * kStep; b < nb; ++b)
        sum += TailBlockDot(kType, w + r * w_stride + b * (S::kBytes / kStep), kQK, xq[t] + b * kQK, xd[t][b]);
      y[t * ldy + r] = sum;
    }
  }
}

template <GgmlType kType>
struct Iq4K {
  template <int R, int T>
  struct K {
    static void Run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
      Iq4Kernel<kType, R, T>(n, w, ws, x, xs, y, ldy);
    }
  };
};

template <GgmlType kType>
void TileIq4(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y,
             int64_t ldy) {
  WalkTile<Iq4K<kType>::template K, 2, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

}  // namespace

TileFn Avx512VnniIqTile(GgmlType type) {
  switch (type) {
    case GgmlType::kIQ4_NL: return &TileIq4<GgmlType::kIQ4_NL>;
    case GgmlType::kIQ4_XS: return &TileIq4<GgmlType::kIQ4_XS>;
    default: return nullptr;
  }
}

}  // namespace llmesh::engine::internal
