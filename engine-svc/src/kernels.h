// Internal contract between MatMul and the per-ISA dot-product kernels.
//
// MatMul quantizes each activation row once into the format the weight type's
// kernel wants (ActKind), then hands kernels tiles of weight rows x activation
// rows. Each ISA level (dot_scalar.cc, dot_avx2*.cc, dot_avx512*.cc) provides
// tiles for the types it accelerates and nullptr for the rest, which fall back
// to the next level down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "llmesh/engine/quants.h"

namespace llmesh::engine::internal {

enum class ActKind {
  kF32,   // n floats
  kBF16,  // n bfloat16 (for vdpbf16ps)
  // The 32-block family's activations, split so SIMD loads are contiguous:
  //   int8 qs[n] | float d[n/32] | float s[n/32]   with s = d * sum(qs of block)
  kQ8,
  kQ8K,   // block_q8_K[n/256]
};

// The calling thread's reusable 64-byte-aligned buffer number kSlot: the hot
// path allocates nothing per call. Grows, never shrinks.
enum ScratchSlot { kScratchActs = 0, kScratchPackedActs = 1 };
template <int kSlot>
uint8_t* ThreadScratch(size_t bytes) {
  struct Buf {
    uint8_t* p = nullptr;
    size_t cap = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf buf;
  if (bytes > buf.cap) {
    std::free(buf.p);
    buf.cap = (bytes + 4095) & ~size_t{4095};
    buf.p = static_cast<uint8_t*>(std::aligned_alloc(64, buf.cap));
  }
  return buf.p;
}

ActKind ActKindFor(GgmlType type);
// Bytes of one quantized activation row (a multiple of 64).
size_t ActRowBytes(ActKind kind, int64_t n);
// Scalar reference activation quantizer.
void QuantizeActScalar(ActKind kind, const float* x, void* dst, int64_t n);

// Views into a kQ8 activation row.
inline const int8_t* Q8Qs(const uint8_t* row) { return reinterpret_cast<const int8_t*>(row); }
inline const float* Q8D(const uint8_t* row, int64_t n) { return reinterpret_cast<const float*>(row + n); }
inline const float* Q8S(const uint8_t* row, int64_t n) { return Q8D(row, n) + n / kQK; }

// y[t * ldy + r] = dot(weight row r, activation row t) for r < nr, t < nt.
// w rows are w_stride bytes apart, activation rows x_stride bytes apart.
using TileFn = void (*)(int64_t n, const uint8_t* w, size_t w_stride, int nr, const uint8_t* x,
                        size_t x_stride, int nt, float* y, int64_t ldy);
// Packed weights (packed_layout.h). A thread interleaves the nt activation
// rows once into its scratch (PackedActs: runs of 8, 4, 2, 1 rows), then runs
// any groups of any matrices of that input width against them.
struct PackedRun {
  int t0, T;
  const uint8_t* acts;
};
struct PackedActs {
  PackedRun run[kQK];  // nt <= 64 (MatMul's token chunk) gives at most 11
  int n_runs = 0;
};
// Groups [g0, g1) of 16 rows of one matrix; results to y (row t of the
// activations at y + t * ldy, from the segment's first group on).
struct PackedSegment {
  const uint8_t* packed;
  int64_t g0, g1;
  float* y;
  int64_t ldy;
};
struct PackedKernels {
  PackedActs (*interleave)(int64_t n, const uint8_t* x, size_t x_stride, int nt);
  void (*groups)(int64_t n, const PackedSegment& seg, const PackedActs& acts);
};
// Activation quantizer of one row (SIMD levels may speed up kQ8/kQ8K).
using QuantizeActFn = void (*)(ActKind kind, const float* x, void* dst, int64_t n);

// Walks an nr x nt tile in register blocks: RP weight rows x TP activation
// rows while TP activation rows remain (prefill), then RD x 1 (decode is
// bandwidth-bound and wants several weight rows in flight).
// K<R, T>::Run(n, w, w_stride, x, x_stride, y, ldy) computes one R x T block.
template <template <int, int> class K, int RP, int TP, int RD>
void WalkTile(int64_t n, const uint8_t* w, size_t ws, int nr, const uint8_t* x, size_t xs, int nt,
              float* y, int64_t ldy) {
  int t = 0;
  for (; t + TP <= nt; t += TP) {
    int r = 0;
    for (; r + RP <= nr; r += RP) K<RP, TP>::Run(n, w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy);
    for (; r < nr; ++r) K<1, TP>::Run(n, w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy);
  }
  for (; t < nt; ++t) {
    int r = 0;
    for (; r + RD <= nr; r += RD) K<RD, 1>::Run(n, w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy);
    for (; r < nr; ++r) K<1, 1>::Run(n, w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy);
  }
}

// Decode and small batches (a continuous batch of a few sequences) stream
// each weight byte from memory once per step: ask for the same span of the
// next R-row block early, so the short per-row streams (a row is ~1-2 KB)
// are not left to the hardware prefetcher's warm-up. In prefill the rows
// are cached after the first token group and the hint costs little.
template <int R, int T>
inline void PrefetchNextRows(const void* p, size_t w_stride, int bytes) {
  const char* q = static_cast<const char*>(p) + R * w_stride;
  for (int off = 0; off < bytes; off += 64) __builtin_prefetch(q + off, 0, 3);
}

// The float dot of one weight block (dequantized by the reference code) with
// int8 activations xq scaled by dx: the odd-block tails of the SIMD kernels.
inline float TailBlockDot(GgmlType type, const void* block, int block_size, const int8_t* xq, float dx) {
  float wf[kQK_K];
  (void)DequantizeRow(type, block, wf, block_size);
  float s = 0;
  for (int j = 0; j < block_size; ++j) s += wf[j] * xq[j];
  return s * dx;
}

TileFn ScalarTile(GgmlType type);
TileFn Avx2Tile(GgmlType type);
TileFn Avx512Tile(GgmlType type);      // AVX-512F/BW/VL float paths
TileFn Avx512VnniTile(GgmlType type);  // + VNNI integer paths, BF16 if the CPU has it
TileFn Avx512VnniKTile(GgmlType type);  // the K-quants (dot_avx512_kquants.cc)
TileFn Avx2KTile(GgmlType type);        // the K-quants (dot_avx2_kquants.cc)
TileFn Avx512VnniIqTile(GgmlType type);  // iq4_nl, iq4_xs (dot_avx512_iq.cc)
TileFn Avx2IqTile(GgmlType type);        // iq4_nl, iq4_xs (dot_avx2_iq.cc)
TileFn Avx512VnniTqTile(GgmlType type);  // the ternary types (dot_avx512_tq.cc)
TileFn Avx2TqTile(GgmlType type);        // (dot_avx2_tq.cc)
// dot_avx512_packed.cc; nullptr members for a type without a packed layout.
PackedKernels Avx512VnniPacked(GgmlType type);
PackedKernels Avx512VnniPackedK(GgmlType type);  // dot_avx512_packed_k.cc
bool CpuHasAvx512Bf16();
// SIMD activation quantizers (kQ8 and kQ8K; other kinds go to the scalar
// one). Bit-identical to QuantizeActScalar.
void QuantizeActAvx2(ActKind kind, const float* x, void* dst, int64_t n);
void QuantizeActAvx512(ActKind kind, const float* x, void* dst, int64_t n);

}  // namespace llmesh::engine::internal
