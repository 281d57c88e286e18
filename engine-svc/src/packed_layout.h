// The 16-row interleaved layout of packed weights (weight_pack.cc writes it,
// dot_avx512_packed.cc reads it).
//
// A plain GGUF matrix keeps each row's blocks together, so a kernel reads one
// row at a time and spends most of its instructions decoding blocks and
// spreading scales per row. Packed, 16 rows' block b sit side by side: one
// 512-bit register holds 4 consecutive weights of each of 16 rows (one row
// per 32-bit lane), so a single vpdpbusd against 4 activation bytes broadcast
// to every lane advances 16 dot products by 4 elements, and the 16 block
// scales load as one vector (llama.cpp's Q4_0 "repack" buffers do the same).
//
// Per group of 16 rows (group_stride bytes apart, 64-byte aligned):
//   qs[nb][kQsBytes]   block b of the 16 rows, 4 weights per row per 32-bit lane,
//                      as unsigned bytes u = q + kBias (Q8_0) or nibbles (the
//                      rest), Q5_0/Q5_1 then 64 bytes of 5th bits
//   d[nb][16]          the 16 rows' fp16 block scales
//   m[nb][16]          Q4_1/Q5_1: the fp16 block mins
// The nibble types pack two 4-weight groups per byte: in 64-byte vector i of
// a block, byte 4*row + j holds weight 8i+j in its low nibble and 8i+4+j in
// its high. Their 5th bits lie as Q5_K's below. IQ4_NL packs its nibbles as
// Q4_0; the kernel looks them up in the grid biased by 128 (u = grid + 128,
// 1..241).
//
// IQ4_XS packs its 32-blocks' nibbles as IQ4_NL, but its scales per
// superblock s of 8 blocks, so they stay 8 bits per 32 weights:
//   qs[nb][256]        as IQ4_NL
//   d[nsb][16]         fp16 superblock scales
//   sc[nb][16]         int8 ls - 32 of block b of row r at [b][r]
// (d * (ls - 32) as one fp16 per block would round: 11 + 6 bits.)
#pragma once

#include <cstddef>
#include <cstdint>

#include "llmesh/engine/quants.h"

namespace llmesh::engine::internal {

constexpr int kPackRows = 16;

// The K-quants pack per 256-element superblock s, one record of
// KRecordBytes(type) per superblock and group, in 8 units of 32 weights:
//   qs[8][4][64]   unit j as a Q4_0 block above: low 4 bits of each weight
//   hi[8][..]      Q5_K: [64] the 5th bits, Q6_K: [128] the top 2 bits
//   sc[..][16]     Q4_K/Q5_K: [8] 6-bit scales (uint8), then the 6-bit mins
//                  by unit pair p: [4][16][2], row r's mins of units 2p
//                  and 2p+1 side by side (one vpdpwssd lane once widened);
//                  Q6_K: [16] int8 scales of 16-weight sub-blocks
//   d[16]          fp16 superblock scales (Q4_K/Q5_K: then dmin[16])
// In lane r of a Q5_K hi vector, bit 8k+i is the 5th bit of weight 8i+k and
// bit 8k+4+i that of weight 8i+4+k (i < 4): one shift and mask put each
// nibble vector's bits at bit 4 of its bytes. A Q6_K hi vector h holds the
// 2-bit tops of weights 16h'+k, +4, +8, +12 (h' = h % 2, k < 4) in bits
// 0-1, 2-3, 4-5, 6-7 of byte k. The records hold the GGUF bytes plus the
// scales spread to one byte each and padding to 64: Q4_K 2.8% more, Q5_K
// 2.3%, Q6_K 1%.
//
// The 32-block types: dot(block) = d * sum((u - kBias) x) (+ m * sum(x)).
constexpr bool HasPackedLayout(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0: case GgmlType::kQ4_1: case GgmlType::kQ5_0: case GgmlType::kQ5_1: case GgmlType::kQ8_0:
    case GgmlType::kIQ4_NL: case GgmlType::kIQ4_XS:
    case GgmlType::kQ4_K: case GgmlType::kQ5_K: case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}
constexpr bool HasMins(GgmlType type) { return type == GgmlType::kQ4_1 || type == GgmlType::kQ5_1; }
constexpr bool HasFifthBits(GgmlType type) { return type == GgmlType::kQ5_0 || type == GgmlType::kQ5_1; }
constexpr bool IsIq4(GgmlType type) { return type == GgmlType::kIQ4_NL || type == GgmlType::kIQ4_XS; }
constexpr bool IsPackedK(GgmlType type) {
  return type == GgmlType::kQ4_K || type == GgmlType::kQ5_K || type == GgmlType::kQ6_K;
}
constexpr int PackedQsBytes(GgmlType type) {
  return type == GgmlType::kQ8_0 ? 512 : HasFifthBits(type) ? 256 + 64 : 256;
}
constexpr int PackedBias(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0: return 8;
    case GgmlType::kQ5_0: return 16;
    case GgmlType::kQ8_0: case GgmlType::kIQ4_NL: case GgmlType::kIQ4_XS: return 128;
    case GgmlType::kQ6_K: return 32;
    default: return 0;  // Q4_1, Q5_1 (a min instead), Q4_K, Q5_K
  }
}
// Offsets inside a K record.
constexpr int KHiOffset() { return 8 * 256; }
constexpr int KHiBytes(GgmlType type) { return type == GgmlType::kQ5_K ? 64 : type == GgmlType::kQ6_K ? 128 : 0; }
constexpr int KScOffset(GgmlType type) { return KHiOffset() + 8 * KHiBytes(type); }
constexpr int KDOffset(GgmlType type) { return KScOffset(type) + 256; }
// 64-byte aligned, so every record's vectors are.
constexpr int KRecordBytes(GgmlType type) {
  return (KDOffset(type) + (type == GgmlType::kQ6_K ? 2 : 4) * kPackRows + 63) / 64 * 64;
}
static_assert(KRecordBytes(GgmlType::kQ4_K) == 16 * 148 && KRecordBytes(GgmlType::kQ6_K) == 16 * 212);

inline size_t PackedGroupStride(GgmlType type, int64_t n_in) {
  const size_t nb = static_cast<size_t>(n_in / kQK), nsb = static_cast<size_t>(n_in / kQK_K);
  const size_t bytes = IsPackedK(type)                ? nsb * KRecordBytes(type)
                       : type == GgmlType::kIQ4_XS ? nb * (PackedQsBytes(type) + kPackRows) + nsb * 2 * kPackRows
                                                   : nb * (PackedQsBytes(type) + (HasMins(type) ? 4 : 2) * kPackRows);
  return (bytes + 63) & ~size_t{63};
}

}  // namespace llmesh::engine::internal
