// AVX2 (+ FMA, F16C) kernels: float weights and the 32-block family. The
// K-quants are in dot_avx2_kquants.cc.
//
// 32-block family, one block (32 elements) per step, as ggml's AVX2 paths:
// weights decode to 32 unsigned bytes u, vpmaddubsw multiplies them with the
// int8 activations into s16 pairs (no saturation: u <= 31 or |q8| <= 128,
// |xq| <= 127), vpmaddwd against ones widens to s32, and
//   dot(block) = dw * dx * sum(u * xq) + cw * sx,   sx = dx * sum(xq)
// where cw is the type's offset (-8 dw for q4_0, -16 dw for q5_0) or min m
// (q4_1, q5_1), accumulated in scalar once per block and row.
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

// 16 nibble bytes -> 32 bytes in element order [lo nibbles | hi nibbles].
inline __m256i Nibbles(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

// 0x10 in byte j where bit j of the 32-bit qh is set (ggml's bytes_from_bits_32).
inline __m256i HighBits(const uint8_t* qh) {
  uint32_t q;
  std::memcpy(&q, qh, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(q)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_and_si256(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

// Per-type decoding: Quants() gives u (or |q| for q8_0, with `sign` set to q
// so the activation takes q's sign), Consts() dw and cw.
template <GgmlType kType> struct Blk32;

template <> struct Blk32<GgmlType::kQ4_0> {
  using Block = block_q4_0;
  static constexpr bool kSigned = false, kHasC = true;
  static __m256i Quants(const Block& b, __m256i*) { return Nibbles(b.qs); }
  static void Consts(const Block& b, float* dw, float* cw) { *dw = Half(b.d); *cw = -8.0f * *dw; }
};
template <> struct Blk32<GgmlType::kQ4_1> {
  using Block = block_q4_1;
  static constexpr bool kSigned = false, kHasC = true;
  static __m256i Quants(const Block& b, __m256i*) { return Nibbles(b.qs); }
  static void Consts(const Block& b, float* dw, float* cw) { *dw = Half(b.d); *cw = Half(b.m); }
};
template <> struct Blk32<GgmlType::kQ5_0> {
  using Block = block_q5_0;
  static constexpr bool kSigned = false, kHasC = true;
  static __m256i Quants(const Block& b, __m256i*) { return _mm256_or_si256(Nibbles(b.qs), HighBits(b.qh)); }
  static void Consts(const Block& b, float* dw, float* cw) { *dw = Half(b.d); *cw = -16.0f * *dw; }
};
template <> struct Blk32<GgmlType::kQ5_1> {
  using Block = block_q5_1;
  static constexpr bool kSigned = false, kHasC = true;
  static __m256i Quants(const Block& b, __m256i*) { return _mm256_or_si256(Nibbles(b.qs), HighBits(b.qh)); }
  static void Consts(const Block& b, float* dw, float* cw) { *dw = Half(b.d); *cw = Half(b.m); }
};
template <> struct Blk32<GgmlType::kQ8_0> {
  using Block = block_q8_0;
  static constexpr bool kSigned = true, kHasC = false;
  static __m256i Quants(const Block& b, __m256i* sign) {
    *sign = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    return _mm256_abs_epi8(*sign);  // |-128| = 128 unsigned: exact
  }
  static void Consts(const Block& b, float* dw, float*) { *dw = Half(b.d); }
};

template <GgmlType kType, int R, int T>
void Q32Kernel(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
               float* y, int64_t ldy) {
  using B = Blk32<kType>;
  using Block = typename B::Block;
  const int64_t nb = n / kQK;
  const Block* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const Block*>(w + r * w_stride);
  const int8_t* xq[T];
  const float *xd[T], *xs[T];
  for (int t = 0; t < T; ++t) {
    xq[t] = Q8Qs(x + t * x_stride);
    xd[t] = Q8D(x + t * x_stride, n);
    xs[t] = Q8S(x + t * x_stride, n);
  }
  __m256 acc[R][T];
  float cacc[R][T] = {};
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);

  for (int64_t b = 0; b < nb; ++b) {  // hot loop
    __m256i u[R], sign[R];
    __m256 dw[R];
    float cw[R];
    for (int r = 0; r < R; ++r) {
      PrefetchNextRows<R, T>(wr[r] + b, w_stride, sizeof(Block));
      u[r] = B::Quants(wr[r][b], &sign[r]);
      float d;
      B::Consts(wr[r][b], &d, &cw[r]);
      dw[r] = _mm256_set1_ps(d);
    }
    for (int t = 0; t < T; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + b * kQK));
      const __m256 dx = _mm256_set1_ps(xd[t][b]);
      for (int r = 0; r < R; ++r) {
        const __m256i xr = B::kSigned ? _mm256_sign_epi8(xv, sign[r]) : xv;
        const __m256i dp = _mm256_madd_epi16(_mm256_maddubs_epi16(u[r], xr), ones);
        acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx), _mm256_cvtepi32_ps(dp), acc[r][t]);
        if constexpr (B::kHasC) cacc[r][t] += cw[r] * xs[t][b];
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = HSum(acc[r][t]) + cacc[r][t];
}

// Float weights (F32, F16, BF16), 8 elements per step. BF16 activations
// arrive as bf16 (ActKind::kBF16), the others as F32.
template <GgmlType kType>
inline __m256 Load8(const uint8_t* row, int64_t i) {
  if constexpr (kType == GgmlType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kType == GgmlType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

inline float WScalar(GgmlType type, const uint8_t* row, int64_t i) {
  if (type == GgmlType::kF32) return reinterpret_cast<const float*>(row)[i];
  uint16_t h;
  std::memcpy(&h, row + 2 * i, 2);
  return type == GgmlType::kF16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

template <GgmlType kType, int R, int T>
void FloatKernel(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                 float* y, int64_t ldy) {
  constexpr GgmlType kXType = kType == GgmlType::kBF16 ? GgmlType::kBF16 : GgmlType::kF32;
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t i = 0;
  constexpr int kBytes = kType == GgmlType::kF32 ? 4 : 2;
  for (; i + 8 <= n; i += 8) {  // hot loop
    __m256 wv[R];
    for (int r = 0; r < R; ++r) {
      PrefetchNextRows<R, T>(w + r * w_stride + i * kBytes, w_stride, 8 * kBytes);
      wv[r] = Load8<kType>(w + r * w_stride, i);
    }
    for (int t = 0; t < T; ++t) {
      const __m256 xv = Load8<kXType>(x + t * x_stride, i);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float sum = HSum(acc[r][t]);
      for (int64_t j = i; j < n; ++j) sum += WScalar(kType, w + r * w_stride, j) * WScalar(kXType, x + t * x_stride, j);
      y[t * ldy + r] = sum;
    }
  }
}

template <GgmlType kType>
struct Q32K {
  template <int R, int T>
  struct K {
    static void Run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
      Q32Kernel<kType, R, T>(n, w, ws, x, xs, y, ldy);
    }
  };
};
template <GgmlType kType>
struct FloatK {
  template <int R, int T>
  struct K {
    static void Run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
      FloatKernel<kType, R, T>(n, w, ws, x, xs, y, ldy);
    }
  };
};

template <GgmlType kType>
void TileQ32(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y,
             int64_t ldy) {
  WalkTile<Q32K<kType>::template K, 2, 2, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}
template <GgmlType kType>
void TileFloat(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y,
               int64_t ldy) {
  WalkTile<FloatK<kType>::template K, 2, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

}  // namespace

TileFn Avx2Tile(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return &TileFloat<GgmlType::kF32>;
    case GgmlType::kF16: return &TileFloat<GgmlType::kF16>;
    case GgmlType::kBF16: return &TileFloat<GgmlType::kBF16>;
    case GgmlType::kQ4_0: return &TileQ32<GgmlType::kQ4_0>;
    case GgmlType::kQ4_1: return &TileQ32<GgmlType::kQ4_1>;
    case GgmlType::kQ5_0: return &TileQ32<GgmlType::kQ5_0>;
    case GgmlType::kQ5_1: return &TileQ32<GgmlType::kQ5_1>;
    case GgmlType::kQ8_0: return &TileQ32<GgmlType::kQ8_0>;
    case GgmlType::kTQ1_0: case GgmlType::kTQ2_0: return Avx2TqTile(type);
    default: return Avx2KTile(type);
  }
}

}  // namespace llmesh::engine::internal
