// Pieces shared by the packed VNNI kernels (dot_avx512_packed.cc for the
// 32-blocks, dot_avx512_packed_k.cc for the K-quants): operand broadcasts and
// the walk of a segment's groups over runs of interleaved activation rows.
#pragma once

#include <immintrin.h>

#include <cstring>

#include "kernels.h"
#include "packed_layout.h"

namespace llmesh::engine::internal {

#define LLMESH_PACKED_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")))

LLMESH_PACKED_TARGET inline __m512i BroadcastI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
// vpdpbusd with its activation operand broadcast from memory ({1to16}).
// GCC emits a separate vpbroadcastd per product instead: 64 more
// instructions per block and 8 rows, ~7% of a 16-row batch's matmul time.
LLMESH_PACKED_TARGET inline __m512i DpbusdBroadcast(__m512i acc, __m512i v, const uint8_t* p) {
  using I32 = int32_t __attribute__((may_alias));
  __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(v), "m"(*reinterpret_cast<const I32*>(p)));
  return acc;
}
LLMESH_PACKED_TARGET inline __m512 BroadcastF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_ps(v);
}

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

// Groups [g, seg.g1) against every run, group-major: a group's weights stay
// in L1/L2 across the runs. K::Run<G, T>(n, group, stride, acts, y, ldy)
// computes G groups against a run of T rows. Single-token decode runs
// kDecodeGroups groups at once: as many memory streams per thread.
template <GgmlType kType, class K, int kDecodeGroups>
void WalkGroups(int64_t n, const PackedSegment& seg, const PackedActs& acts) {
  const size_t stride = PackedGroupStride(kType, n);
  int64_t g = seg.g0;
  if (acts.n_runs == 1 && acts.run[0].T == 1) {
    for (; g + kDecodeGroups <= seg.g1; g += kDecodeGroups)
      K::template Run<kDecodeGroups, 1>(n, seg.packed + g * stride, stride, acts.run[0].acts,
                                        seg.y + (g - seg.g0) * kPackRows, seg.ldy);
  }
  for (; g < seg.g1; ++g) {
    const uint8_t* group = seg.packed + g * stride;
    for (int i = 0; i < acts.n_runs; ++i) {
      const PackedRun& r = acts.run[i];
      float* y = seg.y + (g - seg.g0) * kPackRows + r.t0 * seg.ldy;
      switch (r.T) {
        case 8: K::template Run<1, 8>(n, group, stride, r.acts, y, seg.ldy); break;
        case 4: K::template Run<1, 4>(n, group, stride, r.acts, y, seg.ldy); break;
        case 2: K::template Run<1, 2>(n, group, stride, r.acts, y, seg.ldy); break;
        default: K::template Run<1, 1>(n, group, stride, r.acts, y, seg.ldy); break;
      }
    }
  }
}

}  // namespace llmesh::engine::internal
