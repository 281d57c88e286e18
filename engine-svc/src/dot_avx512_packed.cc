// VNNI kernels over packed weights (layout in packed_layout.h): 16 rows per
// vector lane set, so per block and activation row the work is 8 vpdpbusd
// (each: 4 weights x 16 rows against 4 activation bytes broadcast), one int
// to float conversion and one multiply and one fused multiply-add for the
// scales; the weight decode (Q4_0: 4 loads, 8 and/shift; IQ4: 8 vpshufb
// more) is shared by up to
// 8 activation rows. The row-major kernels (dot_avx512.cc) spend more than
// half their instructions per block on decode, lane permutes and per-row
// scale spreads.
//
// Bias: the packed bytes are u = q + kBias >= 0 (vpdpbusd multiplies unsigned
// by signed), so sum(q x) = sum(u x) - kBias * sum(x): each block's integer
// accumulator starts at -kBias * sum(x) instead of zero. Q4_1/Q5_1 add their
// min times the activation block's float sum instead.
//
// Activations: the kQ8 rows are first interleaved per run of T rows (Acts),
// so every broadcast operand of the hot loop sits at a constant offset from
// one pointer; with a pointer per row, 8 rows x 3 arrays outran the general
// registers and the loop reloaded them from the stack.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "packed_kernels.h"

namespace llmesh::engine::internal {
namespace {

// Interleaved activations of T rows, per block b (ActBytes(T) bytes):
//   int32 q[8][T]   bytes 4k..4k+3 of row t's block at q[k][t]
//   float d[T]      row t's block scale
//   int32 c[T]      -kBias * sum of row t's block quants; Q4_1/Q5_1: float
//                   d * sum, the block's sum of activations
constexpr size_t ActBytes(int T) { return 40 * static_cast<size_t>(T); }

// Transposes 8 rows of 8 int32 (r[t] = row t) into columns (r[k] = int32 k
// of every row).
__attribute__((target("avx2"))) inline void Transpose8x8(__m256i r[8]) {
  __m256i a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    b[i] = _mm256_unpacklo_epi64(a[i], a[i + 2]);
    b[i + 1] = _mm256_unpackhi_epi64(a[i], a[i + 2]);
    b[i + 2] = _mm256_unpacklo_epi64(a[i + 1], a[i + 3]);
    b[i + 3] = _mm256_unpackhi_epi64(a[i + 1], a[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x20);
    r[i + 4] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x31);
  }
}

template <GgmlType kType>
__attribute__((target("avx2"))) void InterleaveActs(int T, int64_t n, const uint8_t* x, size_t x_stride,
                                                    uint8_t* out) {
  const int64_t nb = n / kQK;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = out + b * ActBytes(T);
    __m256i q[8];
    for (int t = 0; t < T; ++t) {
      const uint8_t* row = x + t * x_stride;
      q[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(Q8Qs(row) + b * kQK));
      // sum(q) = sum(q + 128) - 32 * 128, the first through vpsadbw
      const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q[t], flip), _mm256_setzero_si256());
      const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
      const int32_t sum = static_cast<int32_t>(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
      const int32_t c = -PackedBias(kType) * sum;
      std::memcpy(o + 32 * T + 4 * t, Q8D(row, n) + b, 4);
      if constexpr (HasMins(kType)) {
        std::memcpy(o + 36 * T + 4 * t, Q8S(row, n) + b, 4);
      } else {
        std::memcpy(o + 36 * T + 4 * t, &c, 4);
      }
    }
    if (T == 8) {  // batches: a register transpose instead of 64 scattered stores
      Transpose8x8(q);
      for (int k = 0; k < 8; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32 * k), q[k]);
      continue;
    }
    for (int t = 0; t < T; ++t) {
      alignas(32) int32_t w[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(w), q[t]);
      for (int k = 0; k < 8; ++k) std::memcpy(o + 4 * (k * T + t), &w[k], 4);
    }
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")

// One block of the 16 rows as 8 vectors: v[k] lane r = weights 4k..4k+3 of row r.
// The iq4 types look nibbles up in the grid biased by 128 (one vpshufb).
template <GgmlType kType>
inline void DecodeBlock(const uint8_t* qs, __m512i v[8]) {
  if constexpr (kType != GgmlType::kQ8_0) {  // nibbles
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    for (int i = 0; i < 4; ++i) {
      const __m512i p = _mm512_load_si512(qs + 64 * i);
      v[2 * i] = _mm512_and_si512(p, m4);
      v[2 * i + 1] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
      if constexpr (HasFifthBits(kType)) {  // A | (B & C), see dot_avx512_packed_k.cc
        const __m512i h = _mm512_load_si512(qs + 256);
        v[2 * i] = _mm512_ternarylogic_epi32(v[2 * i], _mm512_sll_epi32(h, _mm_cvtsi32_si128(4 - i)), bit4, 0xF8);
        v[2 * i + 1] = _mm512_ternarylogic_epi32(v[2 * i + 1], _mm512_srl_epi32(h, _mm_cvtsi32_si128(i)), bit4, 0xF8);
      }
      if constexpr (IsIq4(kType)) {
        const __m512i grid = _mm512_broadcast_i32x4(_mm_xor_si128(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)), _mm_set1_epi8(static_cast<char>(0x80))));
        v[2 * i] = _mm512_shuffle_epi8(grid, v[2 * i]);
        v[2 * i + 1] = _mm512_shuffle_epi8(grid, v[2 * i + 1]);
      }
    }
  } else {
    for (int k = 0; k < 8; ++k) v[k] = _mm512_load_si512(qs + 64 * k);
  }
}

// The 16 rows' weight scales of block b (of nb); `d` starts the group's
// scale arrays. IQ4_XS: superblock d times the block's int8 ls - 32.
template <GgmlType kType>
inline __m512 BlockScales(const uint16_t* d, int64_t nb, int64_t b) {
  if constexpr (kType == GgmlType::kIQ4_XS) {
    const auto* sc = reinterpret_cast<const int8_t*>(d + nb / 8 * kPackRows);
    const __m512 dsb = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + b / 8 * kPackRows)));
    const __m128i ls = _mm_load_si128(reinterpret_cast<const __m128i*>(sc + b * kPackRows));
    return _mm512_mul_ps(dsb, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(ls)));
  }
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + b * kPackRows)));
}
template <GgmlType kType>
inline void PrefetchScales(const uint16_t* d, int64_t nb, int64_t b) {
  if constexpr (kType == GgmlType::kIQ4_XS) {
    __builtin_prefetch(reinterpret_cast<const int8_t*>(d + nb / 8 * kPackRows) + b * kPackRows, 0, 3);
    __builtin_prefetch(d + b / 8 * kPackRows, 0, 3);
  } else {
    __builtin_prefetch(d + b * kPackRows, 0, 3);
    if constexpr (HasMins(kType)) __builtin_prefetch(d + (nb + b) * kPackRows, 0, 3);
  }
}

// G groups (16G rows, `stride` bytes apart) x T interleaved activation rows;
// y gets 16 consecutive floats per group and row. vpdpbusd has a latency of
// 4 cycles and two issue per cycle on Zen 5, so it needs 8 independent
// chains: C chains per (group, row) pair when G*T < 8 (decode). Decode also
// runs 4 groups at once, 4 memory streams per thread (1 stream: 62 tok/s on
// TinyLlama Q4_0, 4: 73; the row-major kernels, which read 4 rows: 69).
template <GgmlType kType, int G, int T>
void PackedKernel(int64_t n, const uint8_t* group, size_t stride, const uint8_t* acts, float* y, int64_t ldy) {
  constexpr int kQs = PackedQsBytes(kType);
  constexpr int C = G * T >= 8 ? 1 : G * T >= 4 ? 2 : 4;
  // Blocks to prefetch ahead (Q4_0 decode: 2.3 KB per stream). Batches
  // prefetch too: the first run over a group streams it from memory, and
  // without it a 16-row step stalled on those loads (16 streams on TinyLlama
  // Q4_0: 279 -> 308 tok/s). A batch spends longer per block, so it looks
  // further ahead.
  constexpr int kAhead = T >= 4 ? 16 : 8;
  const int64_t nb = n / kQK;
  const uint8_t* qs[G];
  const uint16_t *d[G], *m[G];
  for (int g = 0; g < G; ++g) {
    qs[g] = group + g * stride;
    d[g] = reinterpret_cast<const uint16_t*>(qs[g] + nb * kQs);
    m[g] = d[g] + nb * kPackRows;
  }
  __m512 acc[G][T];
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < T; ++t) acc[g][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {  // hot loop
    const uint8_t* a = acts + b * ActBytes(T);
    for (int g = 0; g < G; ++g) {
      const uint8_t* q = qs[g] + b * kQs;
      for (int off = 0; off < kQs; off += 64) __builtin_prefetch(q + kAhead * kQs + off, 0, 3);
      PrefetchScales<kType>(d[g], nb, b + kAhead);
      __m512i v[8];
      DecodeBlock<kType>(q, v);
      const __m512 dw = BlockScales<kType>(d[g], nb, b);
      __m512i isum[T][C];
      for (int t = 0; t < T; ++t) {
        isum[t][0] = HasMins(kType) ? _mm512_setzero_si512() : BroadcastI32(a + 36 * T + 4 * t);
        for (int c = 1; c < C; ++c) isum[t][c] = _mm512_setzero_si512();
      }
      for (int k = 0; k < 8; ++k)
        for (int t = 0; t < T; ++t)
          isum[t][k % C] = DpbusdBroadcast(isum[t][k % C], v[k], a + 4 * (k * T + t));
      for (int t = 0; t < T; ++t) {
        __m512i s = isum[t][0];
        for (int c = 1; c < C; ++c) s = _mm512_add_epi32(s, isum[t][c]);
        const __m512 dwx = _mm512_mul_ps(dw, BroadcastF32(a + 32 * T + 4 * t));
        acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), dwx, acc[g][t]);
        if constexpr (HasMins(kType)) {
          const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(m[g] + b * kPackRows)));
          acc[g][t] = _mm512_fmadd_ps(mw, BroadcastF32(a + 36 * T + 4 * t), acc[g][t]);
        }
      }
    }
  }
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(y + g * kPackRows + t * ldy, acc[g][t]);
}

#pragma GCC pop_options

template <GgmlType kType>
PackedActs Interleave(int64_t n, const uint8_t* x, size_t xs, int nt) {
  return SplitRuns(x, xs, nt, ActBytes(1) * (n / kQK),
                   [&](int T, const uint8_t* xt, uint8_t* out) { InterleaveActs<kType>(T, n, xt, xs, out); });
}

// One group's kernel against a run of T rows; decode runs 4 groups, 4
// memory streams at once (see PackedKernel).
template <GgmlType kType>
struct Kernel32 {
  template <int G, int T>
  static void Run(int64_t n, const uint8_t* group, size_t stride, const uint8_t* acts, float* y, int64_t ldy) {
    PackedKernel<kType, G, T>(n, group, stride, acts, y, ldy);
  }
};

template <GgmlType kType>
void Groups(int64_t n, const PackedSegment& seg, const PackedActs& acts) {
  WalkGroups<kType, Kernel32<kType>, 4>(n, seg, acts);
}

}  // namespace

PackedKernels Avx512VnniPacked(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0: return {&Interleave<GgmlType::kQ4_0>, &Groups<GgmlType::kQ4_0>};
    case GgmlType::kQ4_1: return {&Interleave<GgmlType::kQ4_1>, &Groups<GgmlType::kQ4_1>};
    case GgmlType::kQ5_0: return {&Interleave<GgmlType::kQ5_0>, &Groups<GgmlType::kQ5_0>};
    case GgmlType::kQ5_1: return {&Interleave<GgmlType::kQ5_1>, &Groups<GgmlType::kQ5_1>};
    case GgmlType::kQ8_0: return {&Interleave<GgmlType::kQ8_0>, &Groups<GgmlType::kQ8_0>};
    case GgmlType::kIQ4_NL: return {&Interleave<GgmlType::kIQ4_NL>, &Groups<GgmlType::kIQ4_NL>};
    case GgmlType::kIQ4_XS: return {&Interleave<GgmlType::kIQ4_XS>, &Groups<GgmlType::kIQ4_XS>};
    default: return Avx512VnniPackedK(type);
  }
}

}  // namespace llmesh::engine::internal
