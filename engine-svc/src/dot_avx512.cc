// AVX-512 kernels: VNNI integer dot products for the 32-block family (q4_0,
// q4_1, q5_0, q5_1, q8_0), AVX-512F float paths (F32, F16, BF16) and
// vdpbf16ps for BF16. The K-quants are in dot_avx512_kquants.cc.
//
// Register tiling: a kernel instance computes R weight rows x T activation
// rows at once. Each 64-element step decodes R weight vectors once and loads
// T activation vectors once, then does R*T vpdpbusd; so prefill reuses every
// decoded weight T times, and decode (T=1) shares activation loads over R rows.
//
// vpdpbusd multiplies unsigned by signed bytes. q4/q5 quants are unsigned
// (q = u - 8, or d*u + m): sum((u-8)*x) = sum(u*x) - 8*sum(x), and the second
// term comes from the activation's per-block s = d*sum(x), once per block
// rather than in the hot loop. q8_0 weights are signed: feed |w| and x with
// w's sign moved onto it.
//
// Block scales: the fp16 d of 16 blocks are collected (BlockHeads), converted
// with one instruction and multiplied by the activation scales into one
// vector, so the hot loop only spreads them over the lanes with a permute
// (scalar conversions per block were what kept q4_0 decode compute-bound).
// GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace llmesh::engine::internal {
namespace {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")

inline float Half(ggml_half h) { return _cvtsh_ss(h); }

// Four blocks' 16-byte nibble arrays, one block per 128-bit lane: lo holds
// elements 0..15 of each block, hi elements 16..31.
inline void Nibbles4(const uint8_t* qs0, const uint8_t* qs1, const uint8_t* qs2, const uint8_t* qs3,
                     __m512i* lo, __m512i* hi) {
  __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0)));
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)), 1);
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs2)), 2);
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs3)), 3);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  *lo = _mm512_and_si512(v, m4);
  *hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
}

// q5's 5th bits for Nibbles4: bits 0..15 of each block's qh go with lo,
// bits 16..31 with hi.
template <class Block>
inline void AddHighBits4(const Block* b, __m512i* lo, __m512i* hi) {
  uint64_t mlo = 0, mhi = 0;
  for (int j = 0; j < 4; ++j) {
    uint32_t h;
    std::memcpy(&h, b[j].qh, 4);
    mlo |= static_cast<uint64_t>(h & 0xFFFF) << (16 * j);
    mhi |= static_cast<uint64_t>(h >> 16) << (16 * j);
  }
  const __m512i five = _mm512_set1_epi8(0x10);
  *lo = _mm512_mask_add_epi8(*lo, mlo, *lo, five);
  *hi = _mm512_mask_add_epi8(*hi, mhi, *hi, five);
}

// The block heads of 16 consecutive blocks as 32 fp16: words 0..15 are the
// d of each block, words 16..31 the following fp16 (m, where the type has
// one). Blocks from m on read as zero. vpgatherdd is microcoded on Zen 4 (it
// cost 40% of q4_0 decode) and scalar stores + a vector load stall on store
// forwarding, so: load 128-byte windows of the row and pick the words out
// with one vpermt2w per window (block sizes 18..34 are even, so every head
// is word-aligned). A window covers kW blocks' heads.
template <int kSize>
struct HeadIdx {
  static constexpr int kW = (128 - 4) / kSize + 1;
  static constexpr int kWindows = (16 + kW - 1) / kW;
  alignas(64) int16_t idx[kWindows][32];
  constexpr HeadIdx() : idx() {
    for (int l = 0; l < 32; ++l) {
      const int i = l % 16, w = i / kW;
      idx[w][l] = static_cast<int16_t>((i - w * kW) * kSize / 2 + l / 16);
    }
  }
};

// `avail`: bytes of the row from b on. Masked loads (slow on Zen 4) only
// where a plain 128-byte load would run past the row.
template <class Block>
inline __m512i BlockHeads(const Block* b, int m, int64_t avail) {
  constexpr int kSize = sizeof(Block);
  constexpr int kW = HeadIdx<kSize>::kW;
  static constexpr HeadIdx<kSize> kIdx;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(b);
  const uint32_t valid = (1u << m) - 1;  // blocks, m <= 16
  __m512i out = _mm512_setzero_si512();
  for (int w = 0; w < HeadIdx<kSize>::kWindows && w * kW < m; ++w) {
    const int j0 = w * kW;
    const uint8_t* q = p + j0 * kSize;
    __m512i lo, hi;
    if (j0 * kSize + 128 <= avail) {
      lo = _mm512_loadu_si512(q);
      hi = _mm512_loadu_si512(q + 64);
    } else {
      const int c = (std::min(kW, m - j0) - 1) * kSize + 4;  // bytes needed, <= 128
      const __mmask64 k0 = c >= 64 ? ~0ull : (1ull << c) - 1;
      const __mmask64 k1 = c >= 128 ? ~0ull : c > 64 ? (1ull << (c - 64)) - 1 : 0;
      lo = _mm512_maskz_loadu_epi8(k0, q);
      hi = _mm512_maskz_loadu_epi8(k1, q + 64);
    }
    const uint32_t blocks = valid & (((1u << kW) - 1) << j0);
    const __mmask32 lanes = blocks | (blocks << 16);
    out = _mm512_or_si512(out, _mm512_maskz_permutex2var_epi16(lanes, lo, _mm512_load_si512(kIdx.idx[w]), hi));
  }
  return out;
}

inline __m512 HalfLo(__m512i h) { return _mm512_cvtph_ps(_mm512_castsi512_si256(h)); }
inline __m512 HalfHi(__m512i h) { return _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)); }

// Per-type decoding of the 32-block family. The nibble types (kQuad) decode
// four blocks per step with Quad(): lo/hi as Nibbles4, so both vpdpbusd of a
// block land in the same 128-bit lane and one float conversion serves four
// blocks. q8_0's Pair() turns two blocks into 64 bytes in element order.
// Scales() turns the BlockHeads of 16 blocks (d, and m where the type has
// one) into
//   dot(block) = dw * dx * sum(u * xq) + cw * sx,   sx = dx * sum(xq).
// Signed types (q8_0) return |q| and the mask of negative q instead.
template <GgmlType kType> struct Blk32;

template <> struct Blk32<GgmlType::kQ4_0> {
  using Block = block_q4_0;
  static constexpr bool kSigned = false, kHasC = true, kQuad = true;
  static void Quad(const Block* b, __m512i* lo, __m512i* hi) {
    Nibbles4(b[0].qs, b[1].qs, b[2].qs, b[3].qs, lo, hi);
  }
  static void Scales(__m512i g, __m512* dw, __m512* cw) {  // q - 8
    *dw = HalfLo(g);
    *cw = _mm512_mul_ps(*dw, _mm512_set1_ps(-8.0f));
  }
};
template <> struct Blk32<GgmlType::kQ4_1> {
  using Block = block_q4_1;
  static constexpr bool kSigned = false, kHasC = true, kQuad = true;
  static void Quad(const Block* b, __m512i* lo, __m512i* hi) {
    Nibbles4(b[0].qs, b[1].qs, b[2].qs, b[3].qs, lo, hi);
  }
  static void Scales(__m512i g, __m512* dw, __m512* cw) {  // d * q + m
    *dw = HalfLo(g);
    *cw = HalfHi(g);
  }
};
template <> struct Blk32<GgmlType::kQ5_0> {
  using Block = block_q5_0;
  static constexpr bool kSigned = false, kHasC = true, kQuad = true;
  static void Quad(const Block* b, __m512i* lo, __m512i* hi) {
    Nibbles4(b[0].qs, b[1].qs, b[2].qs, b[3].qs, lo, hi);
    AddHighBits4(b, lo, hi);
  }
  static void Scales(__m512i g, __m512* dw, __m512* cw) {  // q - 16
    *dw = HalfLo(g);
    *cw = _mm512_mul_ps(*dw, _mm512_set1_ps(-16.0f));
  }
};
template <> struct Blk32<GgmlType::kQ5_1> {
  using Block = block_q5_1;
  static constexpr bool kSigned = false, kHasC = true, kQuad = true;
  static void Quad(const Block* b, __m512i* lo, __m512i* hi) {
    Nibbles4(b[0].qs, b[1].qs, b[2].qs, b[3].qs, lo, hi);
    AddHighBits4(b, lo, hi);
  }
  static void Scales(__m512i g, __m512* dw, __m512* cw) {
    *dw = HalfLo(g);
    *cw = HalfHi(g);
  }
};
template <> struct Blk32<GgmlType::kQ8_0> {
  using Block = block_q8_0;
  static constexpr bool kSigned = true, kHasC = false, kQuad = false;
  static __m512i Pair(const Block* b, __mmask64* neg) {
    const __m512i v = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1);
    *neg = _mm512_movepi8_mask(v);
    return _mm512_abs_epi8(v);  // |-128| = 0x80 = 128 unsigned: still exact
  }
  static void Scales(__m512i g, __m512* dw, __m512*) { *dw = HalfLo(g); }
};

// permutexvar index spreading per-block scales of pair k (blocks 2k, 2k+1 of
// a 16-block group) over the pair's 8 + 8 dpbusd lanes.
struct PairIdx {
  alignas(64) int32_t v[8][16];
  constexpr PairIdx() : v() {
    for (int k = 0; k < 8; ++k)
      for (int l = 0; l < 16; ++l) v[k][l] = 2 * k + l / 8;
  }
};
constexpr PairIdx kPairIdx;

// The same for quad k (blocks 4k .. 4k+3): one block per 128-bit lane.
struct QuadIdx {
  alignas(64) int32_t v[4][16];
  constexpr QuadIdx() : v() {
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 16; ++l) v[k][l] = 4 * k + l / 4;
  }
};
constexpr QuadIdx kQuadIdx;

// R weight rows x T activation rows, 16 blocks (512 elements) per group.
// Per group, each row's 16 block scales are collected and converted at once and
// multiplied by the activation scales (contiguous in the kQ8 layout) into one
// vector; the hot loop then only permutes that vector per 2 or 4 blocks.
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
  __m512 acc[R][T];
  float tail[R][T] = {};
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();

  for (int64_t b0 = 0; b0 < nb; b0 += 16) {
    const int m = static_cast<int>(std::min<int64_t>(16, nb - b0));
    for (int r = 0; r < R; ++r) PrefetchNextRows<R, T>(wr[r] + b0, w_stride, m * sizeof(Block));
    // blocks done in pairs (quads); the rest of the row's last group are tails
    const int mp = B::kQuad ? m & ~3 : m & ~1;
    const __mmask16 mk = static_cast<__mmask16>((1u << mp) - 1);
    __m512 ds[R][T];
    {
      __m512 dw[R], cw[R];
      for (int r = 0; r < R; ++r) {
        B::Scales(BlockHeads(wr[r] + b0, mp, (nb - b0) * static_cast<int64_t>(sizeof(Block))), &dw[r], &cw[r]);
      }
      for (int t = 0; t < T; ++t) {
        const __m512 dx = _mm512_maskz_loadu_ps(mk, xd[t] + b0);
        const __m512 sx = _mm512_maskz_loadu_ps(mk, xs[t] + b0);
        for (int r = 0; r < R; ++r) {
          ds[r][t] = _mm512_mul_ps(dw[r], dx);
          // The per-block constant terms: any lane will do, all are summed.
          if constexpr (B::kHasC) acc[r][t] = _mm512_fmadd_ps(cw[r], sx, acc[r][t]);
        }
      }
    }
    if constexpr (B::kQuad) {
      for (int k = 0; k < mp / 4; ++k) {  // hot loop
        const int64_t b = b0 + 4 * k;
        const __m512i sel = _mm512_load_si512(kQuadIdx.v[k]);
        __m512i lo[R], hi[R];
        for (int r = 0; r < R; ++r) B::Quad(wr[r] + b, &lo[r], &hi[r]);
        for (int t = 0; t < T; ++t) {
          // 128 activations: lanes [b.0-15, b+1.0-15, ...] and [b.16-31, ...]
          const __m512i a = _mm512_loadu_si512(xq[t] + b * kQK), c = _mm512_loadu_si512(xq[t] + b * kQK + 64);
          const __m512i xlo = _mm512_shuffle_i64x2(a, c, _MM_SHUFFLE(2, 0, 2, 0));
          const __m512i xhi = _mm512_shuffle_i64x2(a, c, _MM_SHUFFLE(3, 1, 3, 1));
          for (int r = 0; r < R; ++r) {
            const __m512i dp = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[r], xlo), hi[r], xhi);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_permutexvar_ps(sel, ds[r][t]), acc[r][t]);
          }
        }
      }
    } else {
      for (int k = 0; k < mp / 2; ++k) {  // hot loop
        const int64_t b = b0 + 2 * k;
        const __m512i sel = _mm512_load_si512(kPairIdx.v[k]);
        __m512i wq[R];
        __mmask64 neg[R];
        for (int r = 0; r < R; ++r) wq[r] = B::Pair(wr[r] + b, &neg[r]);
        for (int t = 0; t < T; ++t) {
          const __m512i xv = _mm512_loadu_si512(xq[t] + b * kQK);
          for (int r = 0; r < R; ++r) {
            __m512i xr = xv;
            if constexpr (B::kSigned) xr = _mm512_mask_sub_epi8(xv, neg[r], _mm512_setzero_si512(), xv);
            const __m512i dp = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[r], xr);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_permutexvar_ps(sel, ds[r][t]), acc[r][t]);
          }
        }
      }
    }
    for (int64_t b = b0 + mp; b < b0 + m; ++b) {
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t)
          tail[r][t] += TailBlockDot(kType, wr[r] + b, kQK, xq[t] + b * kQK, xd[t][b]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + tail[r][t];
}

// F32 / F16 weights against F32 activations: 16 elements per step.
template <GgmlType kType>
inline __m512 LoadW(const uint8_t* row, int64_t i) {
  if constexpr (kType == GgmlType::kF32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kType == GgmlType::kF16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i)));
  } else {  // BF16: shift into the high half of an f32
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

inline float WScalar(GgmlType type, const uint8_t* row, int64_t i) {
  if (type == GgmlType::kF32) return reinterpret_cast<const float*>(row)[i];
  uint16_t h;
  std::memcpy(&h, row + 2 * i, 2);
  return type == GgmlType::kF16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

template <GgmlType kType>
inline __m512 LoadX(const uint8_t* row, int64_t i) {
  if constexpr (kType == GgmlType::kBF16) return LoadW<GgmlType::kBF16>(row, i);
  return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i);
}

template <GgmlType kType>
inline float XScalar(const uint8_t* row, int64_t i) {
  if constexpr (kType == GgmlType::kBF16) return WScalar(GgmlType::kBF16, row, i);
  return reinterpret_cast<const float*>(row)[i];
}

template <GgmlType kType, int R, int T>
void FloatKernel(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                 float* y, int64_t ldy) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t i = 0;
  constexpr int kBytes = kType == GgmlType::kF32 ? 4 : 2;
  for (; i + 16 <= n; i += 16) {  // hot loop
    __m512 wv[R];
    for (int r = 0; r < R; ++r) {
      PrefetchNextRows<R, T>(w + r * w_stride + i * kBytes, w_stride, 16 * kBytes);
      wv[r] = LoadW<kType>(w + r * w_stride, i);
    }
    for (int t = 0; t < T; ++t) {
      const __m512 xv = LoadX<kType>(x + t * x_stride, i);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float sum = _mm512_reduce_add_ps(acc[r][t]);
      for (int64_t j = i; j < n; ++j) sum += WScalar(kType, w + r * w_stride, j) * XScalar<kType>(x + t * x_stride, j);
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
void TileQ32(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y, int64_t ldy) {
  WalkTile<Q32K<kType>::template K, 2, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}
void TileF32(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y, int64_t ldy) {
  WalkTile<FloatK<GgmlType::kF32>::K, 4, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}
void TileF16(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y, int64_t ldy) {
  WalkTile<FloatK<GgmlType::kF16>::K, 4, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}
void TileBF16(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y, int64_t ldy) {
  WalkTile<FloatK<GgmlType::kBF16>::K, 2, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

// BF16 weights x BF16 activations with vdpbf16ps: 32 products per instruction
// (each bf16 x bf16 product is exact in f32; only the summation order differs
// from the scalar path). Needs AVX512_BF16, checked at dispatch.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,fma")

template <int R, int T>
void Bf16DotKernel(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {  // hot loop
    __m512bh wv[R];
    for (int r = 0; r < R; ++r) {
      PrefetchNextRows<R, T>(w + r * w_stride + 2 * i, w_stride, 64);
      wv[r] = (__m512bh)_mm512_loadu_si512(w + r * w_stride + 2 * i);
    }
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + t * x_stride + 2 * i);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float sum = _mm512_reduce_add_ps(acc[r][t]);
      for (int64_t j = i; j < n; ++j) {
        uint16_t a, b;
        std::memcpy(&a, w + r * w_stride + 2 * j, 2);
        std::memcpy(&b, x + t * x_stride + 2 * j, 2);
        sum += bf16_to_fp32(a) * bf16_to_fp32(b);
      }
      y[t * ldy + r] = sum;
    }
  }
}

template <int R, int T>
struct Bf16DotK {
  static void Run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    Bf16DotKernel<R, T>(n, w, ws, x, xs, y, ldy);
  }
};

void TileBF16Dot(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt, float* y,
                 int64_t ldy) {
  WalkTile<Bf16DotK, 4, 4, 4>(n, w, ws, nr, x, xs, nt, y, ldy);
}

#pragma GCC pop_options

}  // namespace

TileFn Avx512Tile(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return &TileF32;
    case GgmlType::kF16: return &TileF16;
    case GgmlType::kBF16: return &TileBF16;
    default: return nullptr;
  }
}

TileFn Avx512VnniTile(GgmlType type) {
  switch (type) {
    case GgmlType::kBF16: return CpuHasAvx512Bf16() ? &TileBF16Dot : nullptr;
    case GgmlType::kQ4_0: return &TileQ32<GgmlType::kQ4_0>;
    case GgmlType::kQ4_1: return &TileQ32<GgmlType::kQ4_1>;
    case GgmlType::kQ5_0: return &TileQ32<GgmlType::kQ5_0>;
    case GgmlType::kQ5_1: return &TileQ32<GgmlType::kQ5_1>;
    case GgmlType::kQ8_0: return &TileQ32<GgmlType::kQ8_0>;
    case GgmlType::kTQ1_0: case GgmlType::kTQ2_0: return Avx512VnniTqTile(type);
    default: return Avx512VnniKTile(type);
  }
}

}  // namespace llmesh::engine::internal
