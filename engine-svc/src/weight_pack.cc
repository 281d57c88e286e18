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

void PackBlockQ4_0(const uint8_t* rows, size_t row_bytes, int64_t b, uint8_t* qs, ggml_half* d) {
  const __m128i m4 = _mm_set1_epi8(0x0F);
  for (int r = 0; r < kPackRows; ++r) {
    const block_q4_0& blk = reinterpret_cast<const block_q4_0*>(rows + r * row_bytes)[b];
    d[r] = blk.d;
    // GGUF: weight e < 16 in the low nibble of qs[e], e >= 16 in the high
    // nibble of qs[e - 16]. Packed vector i: weights 8i..8i+3 in the low
    // nibbles of lane r, 8i+4..8i+7 in the high ones.
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs));
    const __m128i lo = _mm_shuffle_epi32(_mm_and_si128(v, m4), _MM_SHUFFLE(3, 1, 2, 0));  // weights 0-3, 8-11, 4-7, 12-15
    const __m128i hi = _mm_shuffle_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _MM_SHUFFLE(3, 1, 2, 0));  // + 16
    const __m128i low_nibbles = _mm_unpacklo_epi64(lo, hi);   // weights 0-3, 8-11, 16-19, 24-27
    const __m128i high_nibbles = _mm_unpackhi_epi64(lo, hi);  // weights 4-7, 12-15, 20-23, 28-31
    StoreLanes(_mm_or_si128(low_nibbles, _mm_slli_epi16(high_nibbles, 4)), qs + 4 * r, 64);
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

// The 256 weights of superblock s of a K-quant row as unsigned integers
// (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63), as the reference dequantizers read them.
void UnpackSuperblockK(GgmlType type, const uint8_t* row, int64_t s, uint8_t u[kQK_K]) {
  if (type == GgmlType::kQ6_K) {
    const block_q6_K& b = reinterpret_cast<const block_q6_K*>(row)[s];
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, c = (e % 128) / 32, l = e % 32;
      const int lo = (b.ql[64 * h + 32 * (c & 1) + l] >> (4 * (c >> 1))) & 0xF;
      u[e] = static_cast<uint8_t>(lo | ((b.qh[32 * h + l] >> (2 * c)) & 3) << 4);
    }
    return;
  }
  // Q4_K/Q5_K: chunk c of 64 weights: low nibbles of qs[32c..] then high ones.
  const uint8_t* qs = type == GgmlType::kQ4_K ? reinterpret_cast<const block_q4_K*>(row)[s].qs
                                              : reinterpret_cast<const block_q5_K*>(row)[s].qs;
  for (int e = 0; e < kQK_K; ++e) u[e] = (qs[32 * (e / 64) + e % 32] >> (4 * (e % 64 / 32))) & 0xF;
  if (type == GgmlType::kQ5_K) {
    const uint8_t* qh = reinterpret_cast<const block_q5_K*>(row)[s].qh;
    for (int e = 0; e < kQK_K; ++e) u[e] |= ((qh[e % 32] >> (e / 32)) & 1) << 4;
  }
}

// Superblock s of 16 K-quant rows into one record (packed_layout.h).
void PackSuperblockK(GgmlType type, const uint8_t* rows, size_t row_bytes, int64_t s, uint8_t* rec) {
  uint8_t* hi = rec + internal::KHiOffset();
  uint8_t* sc = rec + internal::KScOffset(type);
  auto* d = reinterpret_cast<ggml_half*>(rec + internal::KDOffset(type));
  std::memset(rec, 0, internal::KRecordBytes(type));  // hi bits are or-ed in; padding
  for (int r = 0; r < kPackRows; ++r) {
    const uint8_t* row = rows + r * row_bytes;
    uint8_t u[kQK_K];
    UnpackSuperblockK(type, row, s, u);
    for (int j = 0; j < 8; ++j) {
      const uint8_t* w = u + 32 * j;
      for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 4; ++k) {
          rec[256 * j + 64 * i + 4 * r + k] = static_cast<uint8_t>((w[8 * i + k] & 0xF) | (w[8 * i + 4 + k] & 0xF) << 4);
          uint8_t* lane = hi + internal::KHiBytes(type) * j + 4 * r;
          if (type == GgmlType::kQ5_K) {
            const uint32_t bits = (w[8 * i + k] >> 4) << (8 * k + i) | (w[8 * i + 4 + k] >> 4) << (8 * k + 4 + i);
            uint32_t v;
            std::memcpy(&v, lane, 4);
            v |= bits;
            std::memcpy(lane, &v, 4);
          } else if (type == GgmlType::kQ6_K) {  // vector i / 2, byte k: tops of weights 16h+k, +4, +8, +12
            lane[64 * (i / 2) + k] |= static_cast<uint8_t>((w[8 * i + k] >> 4) << (4 * (i % 2)) |
                                                           (w[8 * i + 4 + k] >> 4) << (4 * (i % 2) + 2));
          }
        }
    }
    if (type == GgmlType::kQ6_K) {
      const block_q6_K& b = reinterpret_cast<const block_q6_K*>(row)[s];
      for (int j = 0; j < 16; ++j) sc[16 * j + r] = static_cast<uint8_t>(b.scales[j]);
      d[r] = b.d;
      continue;
    }
    const bool q4 = type == GgmlType::kQ4_K;
    const uint8_t* scales = q4 ? reinterpret_cast<const block_q4_K*>(row)[s].scales
                               : reinterpret_cast<const block_q5_K*>(row)[s].scales;
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, scales, &sc[16 * j + r], &sc[128 + 16 * j + r]);
    d[r] = q4 ? reinterpret_cast<const block_q4_K*>(row)[s].d : reinterpret_cast<const block_q5_K*>(row)[s].d;
    d[kPackRows + r] =
        q4 ? reinterpret_cast<const block_q4_K*>(row)[s].dmin : reinterpret_cast<const block_q5_K*>(row)[s].dmin;
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

void PackGroups(const WeightView& w, int64_t g0, int64_t g1, uint8_t* out) {
  if (internal::IsPackedK(w.type)) return PackGroupsK(w, g0, g1, out);
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
        PackBlockQ4_0(rows, w.row_bytes, b, group + b * qs_bytes, d + b * kPackRows);
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
         w.n_in % (internal::IsPackedK(w.type) ? kQK_K : kQK) == 0 &&
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
