// GGUF tensor block formats, exactly as ggml lays them out (ggml-common.h),
// with scalar reference (de)quantizers written from the format definitions.
//
// These are the slow, obviously-correct versions: `llmesh quantize` and the
// tests use them; the SIMD dot products in src/dot_*.cc are checked against
// them. Quantizers round to nearest like ggml's *_ref functions; the K-quant
// ones port ggml's make_qx_quants / make_qkx2_quants searches so the quality
// matches llama.cpp's reference quantizer (no importance matrix).
#pragma once

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "llmesh/gguf/ggml_type.h"

namespace llmesh::engine {

using gguf::GgmlType;

constexpr int kQK = 32;    // elements per block of the 32-block family
constexpr int kQK_K = 256;  // elements per K-quant super-block
constexpr int kKScaleBytes = 12;  // packed 6-bit scales+mins of q4_K/q5_K

using ggml_half = uint16_t;  // IEEE binary16 bits
using ggml_bf16 = uint16_t;  // bfloat16 bits

// x = d * (q - 8), q in [0, 16): element j in qs[j] low nibble, j+16 in high.
struct block_q4_0 {
  ggml_half d;
  uint8_t qs[kQK / 2];
};
// x = d * q + m
struct block_q4_1 {
  ggml_half d;
  ggml_half m;
  uint8_t qs[kQK / 2];
};
// x = d * (q - 16), q = nibble | (bit j of qh) << 4
struct block_q5_0 {
  ggml_half d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * q + m
struct block_q5_1 {
  ggml_half d;
  ggml_half m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * q
struct block_q8_0 {
  ggml_half d;
  int8_t qs[kQK];
};
// x = d * q; s = d * sum(q)
struct block_q8_1 {
  ggml_half d;
  ggml_half s;
  int8_t qs[kQK];
};
// 16 groups of 16: x = d * (scales & 15) * q - dmin * (scales >> 4), q 2-bit.
struct block_q2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  ggml_half d;
  ggml_half dmin;
};
// 16 groups of 16: x = d * (scale6 - 32) * (q2 | hbit << 2 - 4).
struct block_q3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  ggml_half d;
};
// 8 groups of 32: x = d * sc * q - dmin * m, 6-bit sc/m packed in scales.
struct block_q4_K {
  ggml_half d;
  ggml_half dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
struct block_q5_K {
  ggml_half d;
  ggml_half dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// 16 groups of 16: x = d * scales[g] * (q6 - 32).
struct block_q6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  ggml_half d;
};
// Activation format of the K-quant dot products: float d, sums per 16.
struct block_q8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

// The grid of the non-linear 4-bit types (ggml's kvalues_iq4nl).
inline constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};
// Non-linear 4-bit: x = d * kValuesIq4nl[q], q a nibble laid out as q4_0's.
struct block_iq4_nl {
  ggml_half d;
  uint8_t qs[kQK / 2];
};
// 8 groups of 32: x = d * (ls - 32) * kValuesIq4nl[q], ls 6-bit (low 4 bits
// in scales_l, high 2 in scales_h); nibbles per group as in block_iq4_nl.
struct block_iq4_xs {
  ggml_half d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};
// Ternary, x = d * (t - 1), t in {0, 1, 2}: 5 trits per byte in qs (240
// weights), 4 per byte in qh (16 weights), each byte a base-3 fixed-point
// fraction (ggml-quants.c, dequantize_row_tq1_0).
struct block_tq1_0 {
  uint8_t qs[(kQK_K - 4 * kQK_K / 64) / 5];
  uint8_t qh[kQK_K / 64];
  ggml_half d;
};
// Ternary, x = d * (q - 1), q 2-bit.
struct block_tq2_0 {
  uint8_t qs[kQK_K / 4];
  ggml_half d;
};

static_assert(sizeof(block_q4_0) == 18);
static_assert(sizeof(block_iq4_nl) == 18);
static_assert(sizeof(block_iq4_xs) == 136);
static_assert(sizeof(block_tq1_0) == 54);
static_assert(sizeof(block_tq2_0) == 66);
static_assert(sizeof(block_q4_1) == 20);
static_assert(sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24);
static_assert(sizeof(block_q8_0) == 34);
static_assert(sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q2_K) == 84);
static_assert(sizeof(block_q3_K) == 110);
static_assert(sizeof(block_q4_K) == 144);
static_assert(sizeof(block_q5_K) == 176);
static_assert(sizeof(block_q6_K) == 210);
static_assert(sizeof(block_q8_K) == 292);

// ---- half / bfloat16 <-> float (bit-exact, round-to-nearest-even) ----------

inline float fp32_from_bits(uint32_t w) {
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}
inline uint32_t fp32_to_bits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, 4);
  return w;
}

// The branch-free conversions of FP16 (Maratyszcza), as ggml uses.
inline float fp16_to_fp32(ggml_half h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  const float exp_scale = 0x1.0p-112f;
  const float normalized = fp32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = 126u << 23;
  const float magic_bias = 0.5f;
  const float denormalized = fp32_from_bits((two_w >> 17) | magic_mask) - magic_bias;
  const uint32_t denormalized_cutoff = 1u << 27;
  const uint32_t result =
      sign | (two_w < denormalized_cutoff ? fp32_to_bits(denormalized) : fp32_to_bits(normalized));
  return fp32_from_bits(result);
}

inline ggml_half fp32_to_fp16(float f) {
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  float base = (__builtin_fabsf(f) * scale_to_inf) * scale_to_zero;
  const uint32_t w = fp32_to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = fp32_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = fp32_to_bits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<ggml_half>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

inline float bf16_to_fp32(ggml_bf16 h) { return fp32_from_bits(static_cast<uint32_t>(h) << 16); }

inline ggml_bf16 fp32_to_bf16(float f) {
  const uint32_t u = fp32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<ggml_bf16>((u >> 16) | 64);  // quiet NaN
  return static_cast<ggml_bf16>((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

// ---- reference dequantizers: y[0..k) from k/block_size blocks -------------
void dequantize_row_f32(const float* x, float* y, int64_t k);
void dequantize_row_f16(const ggml_half* x, float* y, int64_t k);
void dequantize_row_bf16(const ggml_bf16* x, float* y, int64_t k);
void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t k);
void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t k);
void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t k);
void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t k);
void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t k);
void dequantize_row_q8_1(const block_q8_1* x, float* y, int64_t k);
void dequantize_row_q2_K(const block_q2_K* x, float* y, int64_t k);
void dequantize_row_q3_K(const block_q3_K* x, float* y, int64_t k);
void dequantize_row_q4_K(const block_q4_K* x, float* y, int64_t k);
void dequantize_row_q5_K(const block_q5_K* x, float* y, int64_t k);
void dequantize_row_q6_K(const block_q6_K* x, float* y, int64_t k);
void dequantize_row_q8_K(const block_q8_K* x, float* y, int64_t k);
void dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, int64_t k);
void dequantize_row_iq4_xs(const block_iq4_xs* x, float* y, int64_t k);
void dequantize_row_tq1_0(const block_tq1_0* x, float* y, int64_t k);  // quants_tq.cc
void dequantize_row_tq2_0(const block_tq2_0* x, float* y, int64_t k);

// ---- reference quantizers: k floats into k/block_size blocks --------------
void quantize_row_f32(const float* x, float* y, int64_t k);
void quantize_row_f16(const float* x, ggml_half* y, int64_t k);
void quantize_row_bf16(const float* x, ggml_bf16* y, int64_t k);
void quantize_row_q4_0(const float* x, block_q4_0* y, int64_t k);
void quantize_row_q4_1(const float* x, block_q4_1* y, int64_t k);
void quantize_row_q5_0(const float* x, block_q5_0* y, int64_t k);
void quantize_row_q5_1(const float* x, block_q5_1* y, int64_t k);
void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t k);
void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t k);
void quantize_row_q2_K(const float* x, block_q2_K* y, int64_t k);
void quantize_row_q3_K(const float* x, block_q3_K* y, int64_t k);
void quantize_row_q4_K(const float* x, block_q4_K* y, int64_t k);
void quantize_row_q5_K(const float* x, block_q5_K* y, int64_t k);
void quantize_row_q6_K(const float* x, block_q6_K* y, int64_t k);
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t k);
// iq4: ggml's reference scale search against the grid (no importance matrix).
void quantize_row_iq4_nl(const float* x, block_iq4_nl* y, int64_t k);
void quantize_row_iq4_xs(const float* x, block_iq4_xs* y, int64_t k);
void quantize_row_tq1_0(const float* x, block_tq1_0* y, int64_t k);
void quantize_row_tq2_0(const float* x, block_tq2_0* y, int64_t k);

// The 6-bit scale and min of sub-block j of a q4_K/q5_K `scales` array.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// The 6-bit scale of 32-block ib of an iq4_xs superblock, biased by 32.
inline int iq4_xs_scale(const block_iq4_xs& b, int ib) {
  const int lo = (b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
  const int hi = (b.scales_h >> (2 * ib)) & 3;
  return lo | (hi << 4);
}

// Round to nearest, ties away from zero handled as ggml's magic-number trick
// (ties to even), valid for |x| <= 2^22.
inline int nearest_int(float fval) {
  float val = fval + 12582912.f;
  int i;
  std::memcpy(&i, &val, sizeof(int));
  return (i & 0x007fffff) - 0x00400000;
}

// Whether DequantizeRow/QuantizeRow handle `type`.
bool IsSupportedType(GgmlType type);

// Generic entry points. n must be a multiple of the type's block size.
absl::Status DequantizeRow(GgmlType type, const void* x, float* y, int64_t n);
absl::Status QuantizeRow(GgmlType type, const float* x, void* y, int64_t n);

}  // namespace llmesh::engine
