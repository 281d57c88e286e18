// VNNI kernels over packed K-quant weights (records in packed_layout.h),
// with q8_K activations: 16 rows per vector lane set, one record per
// superblock. Per 32-weight unit and activation row: 8 vpdpbusd, then the
// unit's integer sum times the rows' 6-bit (Q4_K/Q5_K) or int8 (Q6_K, two
// per unit) scales, kept exact in int32 over the superblock as the GGUF-row
// kernels (dot_avx512_kquants.cc) do; one float scale per superblock:
//
//   Q4_K/Q5_K: dx * (d * sum_j sc_j * sum(u x) - dmin * sum_j m_j * bsum_j),
//              the mins term 4 vpdpwssd per superblock
//   Q6_K:      dx * d * sum_j sc_j * (sum(u x) - 32 * bsum_j)
//
// |sum| <= 8 * 63 * 32 * 31 * 127 < 2^31 (Q5_K), 16 * 127 * 16 * 95 * 127 (Q6_K).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "packed_kernels.h"

namespace llmesh::engine::internal {
namespace {

// Interleaved q8_K activations of T rows, per superblock (ActBytes(T) bytes):
//   int32 q[64][T]   bytes 4k..4k+3 of row t's superblock
//   float d[T]
//   int32 c[16][T]   Q4_K/Q5_K: c[p] = the sums of units 2p and 2p+1 as
//                    two int16 (p < 4; |sum| <= 32 * 127);
//                    Q6_K: -32 * the sum of 16-weight sub-block j
constexpr size_t ActBytes(int T) { return 324 * static_cast<size_t>(T); }

template <GgmlType kType>
void InterleaveActs(int T, int64_t n, const uint8_t* x, size_t x_stride, uint8_t* out) {
  const int64_t nsb = n / kQK_K;
  for (int t = 0; t < T; ++t) {
    const auto* blk = reinterpret_cast<const block_q8_K*>(x + t * x_stride);
    for (int64_t s = 0; s < nsb; ++s) {
      uint8_t* o = out + s * ActBytes(T);
      for (int k = 0; k < 64; ++k) std::memcpy(o + 4 * (k * T + t), blk[s].qs + 4 * k, 4);
      std::memcpy(o + 256 * T + 4 * t, &blk[s].d, 4);
      for (int j = 0; j < 16; ++j) {
        int32_t c = 0;
        if constexpr (kType == GgmlType::kQ6_K) {
          c = -32 * blk[s].bsums[j];
        } else if (j < 4) {
          const int16_t* b = blk[s].bsums + 4 * j;
          const uint32_t lo = static_cast<uint16_t>(b[0] + b[1]), hi = static_cast<uint16_t>(b[2] + b[3]);
          c = static_cast<int32_t>(lo | hi << 16);
        }
        std::memcpy(o + 4 * (65 + j) * T + 4 * t, &c, 4);
      }
    }
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")

// (a & 0x0F) | (b & mask) in one instruction: vpternlogd's A | (B & C).
inline __m512i Merge(__m512i nibbles, __m512i b, __m512i mask) {
  return _mm512_ternarylogic_epi32(nibbles, b, mask, 0xF8);
}

// Unit j of a record as 8 vectors: v[k] lane r = weights 4k..4k+3 of the
// unit in row r, unsigned.
template <GgmlType kType>
inline void DecodeUnit(const uint8_t* rec, int j, __m512i v[8]) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const uint8_t* qs = rec + 256 * j;
  const uint8_t* hi = rec + KHiOffset() + KHiBytes(kType) * j;
  for (int i = 0; i < 4; ++i) {
    const __m512i p = _mm512_load_si512(qs + 64 * i);
    const __m512i lo = _mm512_and_si512(p, m4), up = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
    if constexpr (kType == GgmlType::kQ4_K) {
      v[2 * i] = lo;
      v[2 * i + 1] = up;
    } else if constexpr (kType == GgmlType::kQ5_K) {
      const __m512i h = _mm512_load_si512(hi), bit4 = _mm512_set1_epi8(0x10);
      v[2 * i] = Merge(lo, _mm512_sll_epi32(h, _mm_cvtsi32_si128(4 - i)), bit4);
      v[2 * i + 1] = Merge(up, _mm512_srl_epi32(h, _mm_cvtsi32_si128(i)), bit4);
    } else {  // Q6_K: vector i / 2 of the unit's tops, bits 4(i%2) .. +3
      const __m512i h = _mm512_load_si512(hi + 64 * (i / 2)), bits45 = _mm512_set1_epi8(0x30);
      if (i % 2 == 0) {
        v[2 * i] = Merge(lo, _mm512_slli_epi16(h, 4), bits45);
        v[2 * i + 1] = Merge(up, _mm512_slli_epi16(h, 2), bits45);
      } else {
        v[2 * i] = Merge(lo, h, bits45);
        v[2 * i + 1] = Merge(up, _mm512_srli_epi16(h, 2), bits45);
      }
    }
  }
}

inline __m512i LoadScales(const uint8_t* p, bool is_signed) {
  const __m128i b = _mm_load_si128(reinterpret_cast<const __m128i*>(p));
  return is_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

// G groups x T interleaved activation rows (see dot_avx512_packed.cc's
// PackedKernel for the chains and prefetch reasoning).
template <GgmlType kType, int G, int T>
void PackedKernelK(int64_t n, const uint8_t* group, size_t stride, const uint8_t* acts, float* y, int64_t ldy) {
  constexpr bool kQ6 = kType == GgmlType::kQ6_K;
  constexpr int kRec = KRecordBytes(kType);
  constexpr int C = G * T >= 8 ? 1 : G * T >= 4 ? 2 : 4;
  constexpr int kAhead = T >= 4 ? 2 : 1;  // records (2.3-3.4 KB each)
  const int64_t nsb = n / kQK_K;
  __m512 acc[G][T];
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < T; ++t) acc[g][t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < nsb; ++s) {
    const uint8_t* a = acts + s * ActBytes(T);
    for (int g = 0; g < G; ++g) {
      const uint8_t* rec = group + g * stride + s * kRec;
      const uint8_t* ahead = rec + kAhead * kRec;
      for (int off = KScOffset(kType); off < kRec; off += 64) __builtin_prefetch(ahead + off, 0, 3);
      const uint8_t* sc = rec + KScOffset(kType);
      __m512i tot[T], mins[T];
      for (int t = 0; t < T; ++t) tot[t] = mins[t] = _mm512_setzero_si512();
      for (int j = 0; j < 8; ++j) {  // hot loop
        // The next record's lines a unit at a time: all of a record's 37-53
        // lines at once left Q6_K decode 15% slower than its GGUF rows.
        for (int off = 0; off < 256; off += 64) __builtin_prefetch(ahead + 256 * j + off, 0, 3);
        for (int off = 0; off < KHiBytes(kType); off += 64)
          __builtin_prefetch(ahead + KHiOffset() + KHiBytes(kType) * j + off, 0, 3);
        __m512i v[8];
        DecodeUnit<kType>(rec, j, v);
        if constexpr (kQ6) {
          const __m512i sc0 = LoadScales(sc + 32 * j, true), sc1 = LoadScales(sc + 32 * j + 16, true);
          for (int t = 0; t < T; ++t) {
            __m512i lo = BroadcastI32(a + 4 * (65 + 2 * j) * T + 4 * t);
            __m512i up = BroadcastI32(a + 4 * (66 + 2 * j) * T + 4 * t);
            for (int k = 0; k < 4; ++k) {
              lo = DpbusdBroadcast(lo, v[k], a + 4 * ((8 * j + k) * T + t));
              up = DpbusdBroadcast(up, v[k + 4], a + 4 * ((8 * j + k + 4) * T + t));
            }
            tot[t] = _mm512_add_epi32(tot[t], _mm512_add_epi32(_mm512_mullo_epi32(lo, sc0), _mm512_mullo_epi32(up, sc1)));
          }
        } else {
          const __m512i scj = LoadScales(sc + 16 * j, false);
          for (int t = 0; t < T; ++t) {
            __m512i isum[C];
            for (int c = 0; c < C; ++c) isum[c] = _mm512_setzero_si512();
            for (int k = 0; k < 8; ++k) isum[k % C] = DpbusdBroadcast(isum[k % C], v[k], a + 4 * ((8 * j + k) * T + t));
            for (int c = 1; c < C; ++c) isum[0] = _mm512_add_epi32(isum[0], isum[c]);
            tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(isum[0], scj));
          }
        }
      }
      if constexpr (!kQ6) {
        for (int p = 0; p < 4; ++p) {
          const __m512i mp = _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(sc + 128 + 32 * p)));
          for (int t = 0; t < T; ++t) mins[t] = _mm512_dpwssd_epi32(mins[t], mp, BroadcastI32(a + 4 * (65 + p) * T + 4 * t));
        }
      }
      const uint8_t* d = rec + KDOffset(kType);
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d)));
      for (int t = 0; t < T; ++t) {
        const __m512 dx = BroadcastF32(a + 256 * T + 4 * t);
        acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), _mm512_mul_ps(dw, dx), acc[g][t]);
        if constexpr (!kQ6) {
          const __m512 dmin = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d + 32)));
          acc[g][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mins[t]), _mm512_mul_ps(dmin, dx), acc[g][t]);
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
  return SplitRuns(x, xs, nt, ActBytes(1) * (n / kQK_K),
                   [&](int T, const uint8_t* xt, uint8_t* out) { InterleaveActs<kType>(T, n, xt, xs, out); });
}

template <GgmlType kType>
struct KernelK {
  template <int G, int T>
  static void Run(int64_t n, const uint8_t* group, size_t stride, const uint8_t* acts, float* y, int64_t ldy) {
    PackedKernelK<kType, G, T>(n, group, stride, acts, y, ldy);
  }
};

template <GgmlType kType>
void Groups(int64_t n, const PackedSegment& seg, const PackedActs& acts) {
  WalkGroups<kType, KernelK<kType>, 4>(n, seg, acts);
}

}  // namespace

PackedKernels Avx512VnniPackedK(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_K: return {&Interleave<GgmlType::kQ4_K>, &Groups<GgmlType::kQ4_K>};
    case GgmlType::kQ5_K: return {&Interleave<GgmlType::kQ5_K>, &Groups<GgmlType::kQ5_K>};
    case GgmlType::kQ6_K: return {&Interleave<GgmlType::kQ6_K>, &Groups<GgmlType::kQ6_K>};
    default: return {nullptr, nullptr};
  }
}

}  // namespace llmesh::engine::internal
