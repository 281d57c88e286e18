#include "llmesh/engine/weight_pack.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <immintrin.h>

#include "packed_layout.h"

namespace llmesh::engine {
namespace {

using internal::kPackRows;

// Block b of 16 rows into the packed layout (packed_layout.h): each row's
// block becomes one 32-bit lane of each of the block's vectors. SSE2 and
// BMI2's pext are enough (packing runs once per model load, and only on
// AVX-512 VNNI CPUs, which all have BMI2).
inline void StoreLanes(__m128i v, uint8_t* lane0, int stride) {
  alignas(16) uint32_t w[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(w), v);
  for (int i = 0; i < 4; ++i) std::memcpy(lane0 + i * stride, &w[i], 4);
}

// 32 nibbles as Q4_0 stores them (weight e < 16 in the low nibble of byte
// e, e >= 16 in the high nibble of byte e - 16) into lane 0 of a packed
// block: vector i holds weights 8i..8i+3 in its low nibbles, 8i+4..8i+7 in
// its high ones.
inline void StoreNibbleLanes(__m128i v, uint8_t* lane0) {
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_shuffle_epi32(_mm_and_si128(v, m4), _MM_SHUFFLE(3, 1, 2, 0));  // weights 0-3, 8-11, 4-7, 12-15
  const __m128i hi = _mm_shuffle_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _MM_SHUFFLE(3, 1, 2, 0));  // + 16
  const __m128i low_nibbles = _mm_unpacklo_epi64(lo, hi);   // weights 0-3, 8-11, 16-19, 24-27
  const __m128i high_nibbles = _mm_unpackhi_epi64(lo, hi);  // weights 4-7, 12-15, 20-23, 28-31
  StoreLanes(_mm_or_si128(low_nibbles, _mm_slli_epi16(high_nibbles, 4)), lane0, 64);
}

// The 5th bits of a 32-weight unit (bit e of `bits` for weight e) into one lane:
// bit 8k+i is weight 8i+k's, bit 8k+4+i weight 8i+4+k's.
__attribute__((target("bmi2"))) inline uint32_t FifthBitLane(uint32_t bits) {
  uint32_t lane = 0;
  for (uint32_t k = 0; k < 4; ++k) {
    lane |= (_pext_u32(bits, 0x01010101u << k) | _pext_u32(bits, 0x10101010u << k) << 4) << (8 * k);
  }
  return lane;
}

// The nibble 32-blocks (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL): the nibbles, then
// Q5's 5th bits (qh bit e is weight e's) and the _1 types' mins.
template <class Block>
__attribute__((target("bmi2"))) void PackBlockNibbles(const uint8_t* rows, size_t row_bytes, int64_t b, uint8_t* qs,
                                                      ggml_half* d, ggml_half* m) {
  for (int r = 0; r < kPackRows; ++r) {
    const Block& blk = reinterpret_cast<const Block*>(rows + r * row_bytes)[b];
    d[r] = blk.d;
    StoreNibbleLanes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs)), qs + 4 * r);
    if constexpr (requires { blk.qh; }) {
      uint32_t bits;
      std::memcpy(&bits, blk.qh, 4);
      const uint32_t lane = FifthBitLane(bits);
      std::memcpy(qs + 256 + 4 * r, &lane, 4);
    }
    if constexpr (requires { blk.m; }) m[r] = blk.m;
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

// The low nibbles of one 32-weight unit whose weights e are nibble `half`
// (0 low, 1 high) of bytes q[e], in Q4_0's byte order (see StoreNibbleLanes).
inline __m128i UnitNibbles(const uint8_t* q, int half) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16));
  const __m128i m4 = _mm_set1_epi8(0x0F), m4h = _mm_set1_epi8(static_cast<char>(0xF0));
  if (half == 0) return _mm_or_si128(_mm_and_si128(a, m4), _mm_slli_epi16(_mm_and_si128(b, m4), 4));
  return _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), m4), _mm_and_si128(b, m4h));
}

// Q6_K's top 2 bits of 16 weights t[0..15] (one per byte): byte k of the
// lane holds t[k], t[4+k], t[8+k], t[12+k] in bits 0-1, 2-3, 4-5, 6-7.
inline uint32_t TopBitsLane(__m128i t) {
  alignas(16) uint32_t w[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(w), t);
  return w[0] | w[1] << 2 | w[2] << 4 | w[3] << 6;
}

// Superblock s of 16 K-quant rows into one record (packed_layout.h).
__attribute__((target("bmi2"))) void PackSuperblockK(GgmlType type, const uint8_t* rows, size_t row_bytes,
                                                     int64_t s, uint8_t* rec) {
  uint8_t* hi = rec + internal::KHiOffset();
  uint8_t* sc = rec + internal::KScOffset(type);
  auto* d = reinterpret_cast<ggml_half*>(rec + internal::KDOffset(type));
  std::memset(rec + internal::KDOffset(type), 0, internal::KRecordBytes(type) - internal::KDOffset(type));  // padding
  for (int r = 0; r < kPackRows; ++r) {
    const uint8_t* row = rows + r * row_bytes;
    if (type == GgmlType::kQ6_K) {
      const block_q6_K& b = reinterpret_cast<const block_q6_K*>(row)[s];
      // Unit j: half h = j / 4 of the superblock, quarter c = j % 4; low
      // nibbles from ql, top bits from qh (dequantize_row_q6_K).
      for (int j = 0; j < 8; ++j) {
        const int h = j / 4, c = j % 4;
        StoreNibbleLanes(UnitNibbles(b.ql + 64 * h + 32 * (c & 1), c >> 1), rec + 256 * j + 4 * r);
        const __m128i m2 = _mm_set1_epi8(3), sh = _mm_cvtsi32_si128(2 * c);
        for (int half = 0; half < 2; ++half) {
          const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qh + 32 * h + 16 * half));
          const uint32_t lane = TopBitsLane(_mm_and_si128(_mm_srl_epi16(q, sh), m2));
          std::memcpy(hi + 128 * j + 64 * half + 4 * r, &lane, 4);
        }
      }
      for (int j = 0; j < 16; ++j) sc[16 * j + r] = static_cast<uint8_t>(b.scales[j]);
      d[r] = b.d;
      continue;
    }
    // Q4_K/Q5_K: unit j is nibble j % 2 of qs[32 (j / 2) ..]; Q5_K's 5th bit
    // of weight e in unit j is bit j of qh[e].
    const bool q4 = type == GgmlType::kQ4_K;
    const auto& b4 = reinterpret_cast<const block_q4_K*>(row)[s];
    const auto& b5 = reinterpret_cast<const block_q5_K*>(row)[s];
    const uint8_t* qs = q4 ? b4.qs : b5.qs;
    for (int j = 0; j < 8; ++j) StoreNibbleLanes(UnitNibbles(qs + 32 * (j / 2), j % 2), rec + 256 * j + 4 * r);
    if (!q4) {
      for (int j = 0; j < 8; ++j) {
        const __m128i bit = _mm_set1_epi8(static_cast<char>(1 << j));
        auto mask = [&](int half) {  // bit j of 16 qh bytes, one bit per weight
          const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b5.qh + 16 * half));
          return static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(q, bit), bit)));
        };
        const uint32_t lane = FifthBitLane(mask(0) | mask(1) << 16);
        std::memcpy(hi + 64 * j + 4 * r, &lane, 4);
      }
    }
    const uint8_t* scales = q4 ? b4.scales : b5.scales;
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, scales, &sc[16 * j + r], &sc[128 + 32 * (j / 2) + 2 * r + j % 2]);
    d[r] = q4 ? b4.d : b5.d;
    d[kPackRows + r] = q4 ? b4.dmin : b5.dmin;
  }
}

void PackGroupsK(const WeightView& w, int64_t g0, int64_t g1, uint8_t* out) {
  const size_t stride = internal::PackedGroupStride(w.type, w.n_in);
  const int64_t nsb = w.n_in / kQK_K;
  const size_t used = static_cast<size_t>(nsb) * internal::KRecordBytes(w.type);
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* rows = static_cast<const uint8_t*>(w.data) + g * kPackRows * w.row_bytes;
    uint8_t* group = out + g * stride;
    for (int64_t s = 0; s < nsb; ++s) {
      PackSuperblockK(w.type, rows, w.row_bytes, s, group + s * internal::KRecordBytes(w.type));
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
      StoreNibbleLanes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs + ib * kQK / 2)),
                       qs + ib * internal::PackedQsBytes(GgmlType::kIQ4_XS) + 4 * r);
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
  if (internal::IsPackedK(w.type)) return PackGroupsK(w, g0, g1, out);
  if (w.type == GgmlType::kIQ4_XS) return PackGroupsIq4Xs(w, g0, g1, out);
  const size_t stride = internal::PackedGroupStride(w.type, w.n_in);
  const int qs_bytes = internal::PackedQsBytes(w.type);
  const int64_t nb = w.n_in / kQK;
  const size_t used = static_cast<size_t>(nb) * (qs_bytes + (internal::HasMins(w.type) ? 4 : 2) * kPackRows);
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* rows = static_cast<const uint8_t*>(w.data) + g * kPackRows * w.row_bytes;
    uint8_t* group = out + g * stride;
    auto* d = reinterpret_cast<ggml_half*>(group + nb * qs_bytes);
    ggml_half* m = d + nb * kPackRows;
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* qs = group + b * qs_bytes;
      ggml_half *db = d + b * kPackRows, *mb = m + b * kPackRows;
      switch (w.type) {
        case GgmlType::kQ4_0: PackBlockNibbles<block_q4_0>(rows, w.row_bytes, b, qs, db, mb); break;
        case GgmlType::kQ4_1: PackBlockNibbles<block_q4_1>(rows, w.row_bytes, b, qs, db, mb); break;
        case GgmlType::kQ5_0: PackBlockNibbles<block_q5_0>(rows, w.row_bytes, b, qs, db, mb); break;
        case GgmlType::kQ5_1: PackBlockNibbles<block_q5_1>(rows, w.row_bytes, b, qs, db, mb); break;
        case GgmlType::kIQ4_NL: PackBlockNibbles<block_iq4_nl>(rows, w.row_bytes, b, qs, db, mb); break;
        default: PackBlockQ8_0(rows, w.row_bytes, b, qs, db); break;
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
  if (source != nullptr) {
    source->DropPages(w->data, w->row_bytes * static_cast<size_t>(w->n_out));
  }
}

}  // namespace llmesh::engine
