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
// accumulator starts at -kBias * sum(x) instead of zero.
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

#include "kernels.h"
#include "packed_layout.h"

namespace llmesh::engine::internal {
namespace {

// Interleaved activations of T rows, per block b (ActBytes(T) bytes):
//   int32 q[8][T]   bytes 4k..4k+3 of row t's block at q[k][t]
//   float d[T]      row t's block scale
//   int32 c[T]      -kBias * sum of row t's block quants
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
      std::memcpy(o + 36 * T + 4 * t, &c, 4);
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

// Q6_K's activations (kQ8K rows, block_q8_K per 256) interleaved likewise,
// per superblock (ActBytesQ8K(T) bytes):
//   int32 q[64][T]   bytes 4k..4k+3 of row t's superblock
//   float d[T]
//   int32 c[16][T]   -32 * the sum of sub-block j (block_q8_K's bsums)
constexpr size_t ActBytesQ8K(int T) { return 324 * static_cast<size_t>(T); }

void InterleaveActsQ8K(int T, int64_t n, const uint8_t* x, size_t x_stride, uint8_t* out) {
  const int64_t nsb = n / kQK_K;
  for (int t = 0; t < T; ++t) {
    const auto* blk = reinterpret_cast<const block_q8_K*>(x + t * x_stride);
    for (int64_t s = 0; s < nsb; ++s) {
      uint8_t* o = out + s * ActBytesQ8K(T);
      for (int k = 0; k < 64; ++k) std::memcpy(o + 4 * (k * T + t), blk[s].qs + 4 * k, 4);
      std::memcpy(o + 256 * T + 4 * t, &blk[s].d, 4);
      for (int j = 0; j < 16; ++j) {
        const int32_t c = -PackedBias(GgmlType::kQ6_K) * blk[s].bsums[j];
        std::memcpy(o + 4 * (65 + j) * T + 4 * t, &c, 4);
      }
    }
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")

// One block of the 16 rows as 8 vectors: v[k] lane r = weights 4k..4k+3 of row r.
// The iq4 types look nibbles up in the grid biased by 128 (one vpshufb).
template <GgmlType kType>
inline void DecodeBlock(const uint8_t* qs, __m512i v[8]) {
  if constexpr (PackedNibbles(kType)) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i grid = _mm512_broadcast_i32x4(_mm_xor_si128(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)), _mm_set1_epi8(static_cast<char>(0x80))));
    for (int i = 0; i < 4; ++i) {
      const __m512i p = _mm512_load_si512(qs + 64 * i);
      v[2 * i] = _mm512_and_si512(p, m4);
      v[2 * i + 1] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
      if constexpr (kType != GgmlType::kQ4_0) {
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
  }
}

inline __m512i BroadcastI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
// vpdpbusd with its activation operand broadcast from memory ({1to16}).
// GCC emits a separate vpbroadcastd per product instead: 64 more
// instructions per block and 8 rows, ~7% of a 16-row batch's matmul time.
inline __m512i DpbusdBroadcast(__m512i acc, __m512i v, const uint8_t* p) {
  using I32 = int32_t __attribute__((may_alias));
  __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(v), "m"(*reinterpret_cast<const I32*>(p)));
  return acc;
}
inline __m512 BroadcastF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_ps(v);
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
  const uint16_t* d[G];
  for (int g = 0; g < G; ++g) {
    qs[g] = group + g * stride;
    d[g] = reinterpret_cast<const uint16_t*>(qs[g] + nb * kQs);
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
        isum[t][0] = BroadcastI32(a + 36 * T + 4 * t);
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
      }
    }
  }
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(y + g * kPackRows + t * ldy, acc[g][t]);
}

// Q6_K: 16 rows x T activation rows. Per 16-weight sub-block j, 4 vpdpbusd
// from the bias -32 * sum(x), times the rows' int8 scales (vpmulld), summed
// over the superblock in int32 as the GGUF-row kernels do, so batches and
// single-token decode give the same logits; then one float scale per
// superblock. |sum| <= 16 * 127 * 32 * 16 * 127 < 2^31.
template <int T>
void PackedKernelQ6K(int64_t n, const uint8_t* group, const uint8_t* acts, float* y, int64_t ldy) {
  const int64_t nsb = n / kQK_K;
  const auto* sc = reinterpret_cast<const int8_t*>(group + nsb * kQ6KQsBytes);
  const auto* d = reinterpret_cast<const uint16_t*>(group + nsb * (kQ6KQsBytes + kQ6KScBytes));
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < nsb; ++s) {
    const uint8_t* a = acts + s * ActBytesQ8K(T);
    const uint8_t* qs = group + s * kQ6KQsBytes;
    __m512i tot[T];
    for (int t = 0; t < T; ++t) tot[t] = _mm512_setzero_si512();
    for (int j = 0; j < 16; ++j) {  // hot loop
      const __m512i scj =
          _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sc + s * kQ6KScBytes + 16 * j)));
      __m512i isum[T];
      for (int t = 0; t < T; ++t) isum[t] = BroadcastI32(a + 4 * (65 + j) * T + 4 * t);
      for (int i = 0; i < 4; ++i) {
        const __m512i v = _mm512_load_si512(qs + 64 * (4 * j + i));
        for (int t = 0; t < T; ++t) isum[t] = DpbusdBroadcast(isum[t], v, a + 4 * ((4 * j + i) * T + t));
      }
      for (int t = 0; t < T; ++t) tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(isum[t], scj));
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + s * kPackRows)));
    for (int t = 0; t < T; ++t) {
      const __m512 dwx = _mm512_mul_ps(dw, BroadcastF32(a + 256 * T + 4 * t));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), dwx, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

#pragma GCC pop_options

// The nt activation rows as runs of 8, then one of 4, 2 and 1 as the count
// needs, each interleaved into the thread's scratch by `interleave(T, x, out)`
// (`bytes_per_row`: one row's interleaved bytes).
template <class Interleave>
PackedActs SplitRuns(const uint8_t* x, size_t xs, int nt, size_t bytes_per_row, Interleave interleave) {
  PackedActs runs;
  uint8_t* scratch = ThreadScratch<kScratchPackedActs>(bytes_per_row * nt);
  for (int t = 0, size = 8; t < nt;) {
    while (t + size > nt) size /= 2;
    runs.run[runs.n_runs++] = {t, size, scratch};
    interleave(size, x + t * xs, scratch);
    scratch += bytes_per_row * size;
    t += size;
  }
  return runs;
}

template <GgmlType kType>
PackedActs Interleave(int64_t n, const uint8_t* x, size_t xs, int nt) {
  return SplitRuns(x, xs, nt, ActBytes(1) * (n / kQK),
                   [&](int T, const uint8_t* xt, uint8_t* out) { InterleaveActs<kType>(T, n, xt, xs, out); });
}

PackedActs InterleaveQ8K(int64_t n, const uint8_t* x, size_t xs, int nt) {
  return SplitRuns(x, xs, nt, ActBytesQ8K(1) * (n / kQK_K),
                   [&](int T, const uint8_t* xt, uint8_t* out) { InterleaveActsQ8K(T, n, xt, xs, out); });
}

// The kernels of a type as K::Run<T>(n, group, stride, acts, y, ldy), one
// group against a run of T rows.
template <GgmlType kType>
struct Kernel32 {
  template <int T>
  static void Run(int64_t n, const uint8_t* group, size_t stride, const uint8_t* acts, float* y, int64_t ldy) {
    PackedKernel<kType, 1, T>(n, group, stride, acts, y, ldy);
  }
};
struct KernelQ6K {
  template <int T>
  static void Run(int64_t n, const uint8_t* group, size_t, const uint8_t* acts, float* y, int64_t ldy) {
    PackedKernelQ6K<T>(n, group, acts, y, ldy);
  }
};

// Groups [g, seg.g1) against every run, group-major: a group's weights stay
// in L1/L2 across the runs.
template <GgmlType kType, class K>
void WalkGroups(int64_t n, const PackedSegment& seg, const PackedActs& acts, int64_t g) {
  const size_t stride = PackedGroupStride(kType, n);
  for (; g < seg.g1; ++g) {
    const uint8_t* group = seg.packed + g * stride;
    for (int i = 0; i < acts.n_runs; ++i) {
      const PackedRun& r = acts.run[i];
      float* y = seg.y + (g - seg.g0) * kPackRows + r.t0 * seg.ldy;
      switch (r.T) {
        case 8: K::template Run<8>(n, group, stride, r.acts, y, seg.ldy); break;
        case 4: K::template Run<4>(n, group, stride, r.acts, y, seg.ldy); break;
        case 2: K::template Run<2>(n, group, stride, r.acts, y, seg.ldy); break;
        default: K::template Run<1>(n, group, stride, r.acts, y, seg.ldy); break;
      }
    }
  }
}

template <GgmlType kType>
void Groups(int64_t n, const PackedSegment& seg, const PackedActs& acts) {
  int64_t g = seg.g0;
  if (acts.n_runs == 1 && acts.run[0].T == 1) {  // decode: 4 groups, 4 memory streams at once
    constexpr int kDecodeGroups = 4;
    const size_t stride = PackedGroupStride(kType, n);
    for (; g + kDecodeGroups <= seg.g1; g += kDecodeGroups)
      PackedKernel<kType, kDecodeGroups, 1>(n, seg.packed + g * stride, stride, acts.run[0].acts,
                                            seg.y + (g - seg.g0) * kPackRows, seg.ldy);
  }
  WalkGroups<kType, Kernel32<kType>>(n, seg, acts, g);
}

void GroupsQ6K(int64_t n, const PackedSegment& seg, const PackedActs& acts) {
  WalkGroups<GgmlType::kQ6_K, KernelQ6K>(n, seg, acts, seg.g0);
}

}  // namespace

PackedKernels Avx512VnniPacked(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0: return {&Interleave<GgmlType::kQ4_0>, &Groups<GgmlType::kQ4_0>};
    case GgmlType::kQ8_0: return {&Interleave<GgmlType::kQ8_0>, &Groups<GgmlType::kQ8_0>};
    case GgmlType::kQ6_K: return {&InterleaveQ8K, &GroupsQ6K};
    case GgmlType::kIQ4_NL: return {&Interleave<GgmlType::kIQ4_NL>, &Groups<GgmlType::kIQ4_NL>};
    case GgmlType::kIQ4_XS: return {&Interleave<GgmlType::kIQ4_XS>, &Groups<GgmlType::kIQ4_XS>};
    default: return {nullptr, nullptr};
  }
}

}  // namespace llmesh::engine::internal
