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
//                      as unsigned bytes u = q + kBias (Q8_0) or nibbles (Q4_0)
//   d[nb][16]          the 16 rows' fp16 block scales
// Q4_0 packs two 4-weight groups per byte: in 64-byte vector i of a block,
// byte 4*row + j holds weight 8i+j in its low nibble and 8i+4+j in its high.
// IQ4_NL packs its nibbles as Q4_0; the kernel looks them up in the grid
// biased by 128 (u = grid + 128, 1..241).
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

// Q6_K (the output matrix of most llama.cpp quantizations) packs per
// 256-element superblock s instead, weights stored whole as bytes:
//   qs[nsb][64][64]    vector k: weights 4k..4k+3 of each row, u = q (0..63)
//   sc[nsb][16][16]    int8 scale of 16-weight sub-block j of row r at [j][r]
//   d[nsb][16]         fp16 superblock scales
// At 8 bits per weight it is 30% more bytes than the GGUF rows, so single
// token decode (bandwidth-bound) keeps reading those: see PackedForDecode.

// Types with a packed layout. 32-blocks: dot(block) = d * sum((u - kBias) x).
constexpr bool HasPackedLayout(GgmlType type) {
  return type == GgmlType::kQ4_0 || type == GgmlType::kQ8_0 || type == GgmlType::kQ6_K ||
         type == GgmlType::kIQ4_NL || type == GgmlType::kIQ4_XS;
}
constexpr bool PackedForDecode(GgmlType type) { return type != GgmlType::kQ6_K; }
// Nibbles per weight: Q4_0 and the iq4 types.
constexpr bool PackedNibbles(GgmlType type) {
  return type == GgmlType::kQ4_0 || type == GgmlType::kIQ4_NL || type == GgmlType::kIQ4_XS;
}
constexpr int PackedQsBytes(GgmlType type) { return PackedNibbles(type) ? 256 : 512; }
constexpr int PackedBias(GgmlType type) {
  return type == GgmlType::kQ4_0 ? 8 : type == GgmlType::kQ6_K ? 32 : 128;
}
constexpr int kQ6KQsBytes = 4096, kQ6KScBytes = 256;

inline size_t PackedGroupStride(GgmlType type, int64_t n_in) {
  const size_t nb = static_cast<size_t>(n_in / kQK), nsb = static_cast<size_t>(n_in / kQK_K);
  const size_t bytes = type == GgmlType::kQ6_K    ? nsb * (kQ6KQsBytes + kQ6KScBytes + 2 * kPackRows)
                       : type == GgmlType::kIQ4_XS ? nb * (PackedQsBytes(type) + kPackRows) + nsb * 2 * kPackRows
                                                   : nb * (PackedQsBytes(type) + 2 * kPackRows);
  return (bytes + 63) & ~size_t{63};
}

}  // namespace llmesh::engine::internal
