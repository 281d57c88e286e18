#include "llmesh/engine/weight_pack.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <emmintrin.h>

#include "packed_layout.h"

namespace llmesh::engine {
namespace {

using internal::kPackRows;

// Block b of 16 rows into the packed layout (packed_layout.h): each row's
// block becomes one 32-bit lane of each of the block's vectors. SSE2 (the
// x86-64 baseline) is enough; this runs once per model load.
inline void StoreLanes(__m128i v, uint8_t* lane0, int stride) {
  alignas(16) uint32_t w[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(w), v);
  for (int i = 0; i < 4; ++i) std::memcpy(lane0 + i * stride, &w[i], 4);
}

// One row's 16 nibble bytes (weight e < 16 in the low nibble of qs[e], e >= 16
// in the high nibble of qs[e - 16], as q4_0 and the iq4 types) into its lane
// of the block's 4 packed vectors: vector i holds weights 8i..8i+3 in the
// low nibbles, 8i+4..8i+7 in the high ones.
void PackNibbles(const uint8_t* src, uint8_t* lane) {
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  const __m128i lo = _mm_shuffle_epi32(_mm_and_si128(v, m4), _MM_SHUFFLE(3, 1, 2, 0));  // weights 0-3, 8-11, 4-7, 12-15
  const __m128i hi = _mm_shuffle_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _MM_SHUFFLE(3, 1, 2, 0));  // + 16
  const __m128i low_nibbles = _mm_unpacklo_epi64(lo, hi);   // weights 0-3, 8-11, 16-19, 24-27
  const __m128i high_nibbles = _mm_unpackhi_epi64(lo, hi);  // weights 4-7, 12-15, 20-23, 28-31
  StoreLanes(_mm_or_si128(low_nibbles, _mm_slli_epi16(high_nibbles, 4)), lane, 64);
}

// q4_0 and iq4_nl: an fp16 d and 16 nibble bytes.
template <class Block>
void PackBlockNibbles(const uint8_t* rows, size_t row_bytes, int64_t b, uint8_t* qs, ggml_half* d) {
  for (int r = 0; r < kPackRows; ++r) {
    const Block& blk = reinterpret_cast<const Block*>(rows + r * row_bytes)[b];
    d[r] = blk.d;
    PackNibbles(blk.qs, qs + 4 * r);
  }
}

void PackBlockQ8_0(const uint8_t* rows, size_t row_bytes, int64_t b, uint8_t* qs, ggml_half* d) {
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));  // q + 128 as an unsigned byte
  for (int r = 0; r < kPackRows; ++r) {
    const block_q8_0& blk = reinterpret_cast<const block_q8_0*>(rows + r * row_bytes)[b];
    d[r] = blk.d;
    for (int h = 0; h < 2; ++h) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs + 16 * h));
      StoreLanes(_mm_xor_si128(v, flip), qs + 4 * 64 * h + 4 * r, 64);
    }
  }
}

// Superblock s of 16 Q6_K rows: weights whole (u = q, 0..63), scales by
// sub-block. Element e of a superblock: low nibble from ql, high 2 bits from
// qh, as in dequantize_row_q6_K.
void PackSuperblockQ6K(const uint8_t* rows, size_t row_bytes, int64_t s, uint8_t* qs, int8_t* sc, ggml_half* d) {
  for (int r = 0; r < kPackRows; ++r) {
    const block_q6_K& blk = reinterpret_cast<const block_q6_K*>(rows + r * row_bytes)[s];
    d[r] = blk.d;
    for (int j = 0; j < 16; ++j) sc[16 * j + r] = blk.scales[j];
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, c = (e % 128) / 32, l = e % 32;
      const int lo = (blk.ql[64 * h + 32 * (c & 1) + l] >> (4 * (c >> 1))) & 0xF;
      const int hi = (blk.qh[32 * h + l] >> (2 * c)) & 3;
      qs[64 * (e / 4) + 4 * r + e % 4] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void PackGroupsQ6K(const WeightView& w, int64_t g0, int64_t g1, uint8_t* out) {
  const size_t stride = internal::PackedGroupStride(w.type, w.n_in);
  const int64_t nsb = w.n_in / kQK_K;
  const size_t used = static_cast<size_t>(nsb) * (internal::kQ6KQsBytes + internal::kQ6KScBytes + 2 * kPackRows);
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* rows = static_cast<const uint8_t*>(w.data) + g * kPackRows * w.row_bytes;
    uint8_t* group = out + g * stride;
    auto* sc = reinterpret_cast<int8_t*>(group + nsb * internal::kQ6KQsBytes);
    auto* d = reinterpret_cast<ggml_half*>(group + nsb * (internal::kQ6KQsBytes + internal::kQ6KScBytes));
    for (int64_t s = 0; s < nsb; ++s) {
      PackSuperblockQ6K(rows, w.row_bytes, s, group + s * internal::kQ6KQsBytes, sc + s * internal::kQ6KScBytes,
                        d + s * kPackRows);
    }
    std::memset(group + used, 0, stride - used);
  }
}

// Superblock s of 16 IQ4_XS rows: 8 blocks of nibbles, the superblock's d,
// and each block's ls - 32 (packed_layout.h).
void PackSuperblockIq4Xs(const uint8_t* rows, size_t row_bytes, int64_t s, uint8_t* qs, ggml_half* d, int8_t* sc) {
  for (int r = 0; r < kPackRows; ++r) {
    const block_iq4_xs& blk = reinterpret_cast<const block_iq4_xs*>(rows + r * row_bytes)[s];
    d[r] = blk.d;
    for (int ib = 0; ib < kQK_K / kQK; ++ib) {
      sc[kPackRows * ib + r] = static_cast<int8_t>(iq4_xs_scale(blk, ib) - 32);
      PackNibbles(blk.qs + ib * kQK / 2, qs + ib * internal::PackedQsBytes(GgmlType::kIQ4_XS) + 4 * r);
    }
  }
}

void PackGroupsIq4Xs(const WeightView& w, int64_t g0, int64_t g1, uint8_t* out) {
  const size_t stride = internal::PackedGroupStride(w.type, w.n_in);
  const int qs_bytes = internal::PackedQsBytes(w.type);
  const int64_t nb = w.n_in / kQK, nsb = w.n_in / kQK_K, per = kQK_K / kQK;
  const size_t used = static_cast<size_t>(nb) * (qs_bytes + kPackRows) + static_cast<size_t>(nsb) * 2 * kPackRows;
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* rows = static_cast<const uint8_t*>(w.data) + g * kPackRows * w.row_bytes;
    uint8_t* group = out + g * stride;
    auto* d = reinterpret_cast<ggml_half*>(group + nb * qs_bytes);
    auto* sc = reinterpret_cast<int8_t*>(d + nsb * kPackRows);
    for (int64_t s = 0; s < nsb; ++s) {
      PackSuperblockIq4Xs(rows, w.row_bytes, s, group + s * per * qs_bytes, d + s * kPackRows,
                          sc + s * per * kPackRows);
    }
    std::memset(group + used, 0, stride - used);
  }
}

void PackGroups(const WeightView& w, int64_t g0, int64_t g1, uint8_t* out) {
  if (w.type == GgmlType::kQ6_K) return PackGroupsQ6K(w, g0, g1, out);
  if (w.type == GgmlType::kIQ4_XS) return PackGroupsIq4Xs(w, g0, g1, out);
  const size_t stride = internal::PackedGroupStride(w.type, w.n_in);
  const int qs_bytes = internal::PackedQsBytes(w.type);
  const int64_t nb = w.n_in / kQK;
  const size_t used = static_cast<size_t>(nb) * (qs_bytes + 2 * kPackRows);
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* rows = static_cast<const uint8_t*>(w.data) + g * kPackRows * w.row_bytes;
    uint8_t* group = out + g * stride;
    auto* d = reinterpret_cast<ggml_half*>(group + nb * qs_bytes);
    for (int64_t b = 0; b < nb; ++b) {
      if (w.type == GgmlType::kQ4_0) {
        PackBlockNibbles<block_q4_0>(rows, w.row_bytes, b, group + b * qs_bytes, d + b * kPackRows);
      } else if (w.type == GgmlType::kIQ4_NL) {
        PackBlockNibbles<block_iq4_nl>(rows, w.row_bytes, b, group + b * qs_bytes, d + b * kPackRows);
      } else {
        PackBlockQ8_0(rows, w.row_bytes, b, group + b * qs_bytes, d + b * kPackRows);
      }
    }
    std::memset(group + used, 0, stride - used);  // alignment padding
  }
}

}  // namespace

void PackedWeights::Free::operator()(uint8_t* p) const { std::free(p); }

bool WantsPacking(const WeightView& w) {
  static const bool disabled = std::getenv("LLMESH_NO_REPACK") != nullptr;
  return !disabled && internal::HasPackedLayout(w.type) && w.n_out % kPackRows == 0 &&
         w.n_in % gguf::ggml_type_traits(w.type)->block_size == 0 &&
         w.packed == nullptr && DetectedSimdLevel() >= SimdLevel::kAvx512Vnni;
}

void PackedWeights::Pack(WeightView* w, const gguf::GgufFile* source) {
  if (!WantsPacking(*w)) return;
  const size_t stride = internal::PackedGroupStride(w->type, w->n_in);
  const int64_t groups = w->n_out / kPackRows;
  const size_t total = stride * groups;
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, total));
  if (buf == nullptr) return;  // the GGUF rows still work, just slower
  // A 1.1B model's matrices are ~600 MB: split the copy over the cores.
  const int64_t n_threads =
      std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, std::max<int64_t>(1, groups / 64));
  std::vector<std::thread> threads;
  for (int64_t i = 1; i < n_threads; ++i)
    threads.emplace_back(PackGroups, std::cref(*w), groups * i / n_threads, groups * (i + 1) / n_threads, buf);
  PackGroups(*w, 0, groups / n_threads, buf);
  for (std::thread& t : threads) t.join();
  buffers_.emplace_back(buf);
  bytes_ += total;
  w->packed = buf;
  if (source != nullptr && internal::PackedForDecode(w->type)) {
    source->DropPages(w->data, w->row_bytes * static_cast<size_t>(w->n_out));
  }
}

}  // namespace llmesh::engine
