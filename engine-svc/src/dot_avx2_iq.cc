// AVX2 kernels of the non-linear 4-bit types iq4_nl and iq4_xs.
//
// Both multiply against the 32-block activations (kQ8): iq4_xs's block
// scale d * (ls - 32) is just another per-32 float, so it needs neither
// q8_K's 256-blocks nor integer scale products, and the two types share one
// kernel that differs only in where a block's nibbles and scale are.
//
// A nibble becomes its int8 grid value with one vpshufb. The grid is signed,
// so vpmaddubsw takes |w| and the activation with w's sign (as ggml's
// mul_add_epi8): |w|, |xq| <= 127 keeps each pair sum within int16.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels.h"
#include "simd_avx2.h"

namespace llmesh::engine::internal {
namespace {

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

using avx2::Half;
using avx2::HSum;

// Where 32-block b of a row keeps its 16 nibble bytes and its scale.
template <GgmlType kType> struct Iq4Block;
template <> struct Iq4Block<GgmlType::kIQ4_NL> {
  static constexpr int kBytesPer32 = sizeof(block_iq4_nl);
  static const uint8_t* Qs(const uint8_t* row, int64_t b) {
    return reinterpret_cast<const block_iq4_nl*>(row)[b].qs;
  }
  static float Scale(const uint8_t* row, int64_t b) { return Half(reinterpret_cast<const block_iq4_nl*>(row)[b].d); }
};
template <> struct Iq4Block<GgmlType::kIQ4_XS> {
  static constexpr int kBytesPer32 = sizeof(block_iq4_xs) / 8;
  static constexpr int kPer = kQK_K / kQK;
  static const uint8_t* Qs(const uint8_t* row, int64_t b) {
    return reinterpret_cast<const block_iq4_xs*>(row)[b / kPer].qs + (b % kPer) * kQK / 2;
  }
  static float Scale(const uint8_t* row, int64_t b) {
    const block_iq4_xs& sb = reinterpret_cast<const block_iq4_xs*>(row)[b / kPer];
    return Half(sb.d) * static_cast<float>(iq4_xs_scale(sb, static_cast<int>(b % kPer)) - 32);
  }
};

// 16 nibble bytes -> 32 int8 grid values in element order.
inline __m256i GridValues(const uint8_t* qs, __m256i grid) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
  return _mm256_shuffle_epi8(grid, nib);
}

template <GgmlType kType, int R, int T>
void Iq4Kernel(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
               int64_t ldy) {
  using B = Iq4Block<kType>;
  const int64_t nb = n / kQK;
  const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)));
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t* xq[T];
  const float* xd[T];
  for (int t = 0; t < T; ++t) {
    xq[t] = Q8Qs(x + t * x_stride);
    xd[t] = Q8D(x + t * x_stride, n);
  }
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();

  for (int64_t b = 0; b < nb; ++b) {  // hot loop
    __m256i aw[R], sw[R];
    __m256 dw[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* row = w + r * w_stride;
      PrefetchNextRows<R, T>(row + b * B::kBytesPer32, w_stride, B::kBytesPer32);
      sw[r] = GridValues(B::Qs(row, b), grid);
      aw[r] = _mm256_abs_epi8(sw[r]);
      dw[r] = _mm256_set1_ps(B::Scale(row, b));
    }
    for (int t = 0; t < T; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + b * kQK));
      const __m256 dx = _mm256_set1_ps(xd[t][b]);
      for (int r = 0; r < R; ++r) {
        const __m256i dp = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(xv, sw[r])), ones);
        acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx), _mm256_cvtepi32_ps(dp), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = HSum(acc[r][t]);
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
  WalkTile<Iq4K<kType>::template K, 2, 2, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

}  // namespace

TileFn Avx2IqTile(GgmlType type) {
  switch (type) {
    case GgmlType::kIQ4_NL: return &TileIq4<GgmlType::kIQ4_NL>;
    case GgmlType::kIQ4_XS: return &TileIq4<GgmlType::kIQ4_XS>;
    default: return nullptr;
  }
}

}  // namespace llmesh::engine::internal
