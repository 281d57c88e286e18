// Reference (de)quantizers for the plain float types and the 32-element block
// family (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1), plus the generic entry points
// (K-quants in quants_k.cc, iq4 in quants_iq.cc).
#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "llmesh/engine/quants.h"

namespace llmesh::engine {

void dequantize_row_f32(const float* x, float* y, int64_t k) { std::memcpy(y, x, k * sizeof(float)); }
void dequantize_row_f16(const ggml_half* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = fp16_to_fp32(x[i]);
}
void dequantize_row_bf16(const ggml_bf16* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = bf16_to_fp32(x[i]);
}
void quantize_row_f32(const float* x, float* y, int64_t k) { std::memcpy(y, x, k * sizeof(float)); }
void quantize_row_f16(const float* x, ggml_half* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = fp32_to_fp16(x[i]);
}
void quantize_row_bf16(const float* x, ggml_bf16* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = fp32_to_bf16(x[i]);
}

// ---- dequantize ------------------------------------------------------------

void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[i * kQK + j] = ((x[i].qs[j] & 0x0F) - 8) * d;
      y[i * kQK + j + kQK / 2] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[i * kQK + j] = (x[i].qs[j] & 0x0F) * d + m;
      y[i * kQK + j + kQK / 2] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = ((qh >> j) & 1) << 4;
      const int h1 = ((qh >> (j + 16)) & 1) << 4;
      y[i * kQK + j] = (((x[i].qs[j] & 0x0F) | h0) - 16) * d;
      y[i * kQK + j + kQK / 2] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = ((qh >> j) & 1) << 4;
      const int h1 = ((qh >> (j + 16)) & 1) << 4;
      y[i * kQK + j] = ((x[i].qs[j] & 0x0F) | h0) * d + m;
      y[i * kQK + j + kQK / 2] = ((x[i].qs[j] >> 4) | h1) * d + m;
    }
  }
}

void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = x[i].qs[j] * d;
  }
}

void dequantize_row_q8_1(const block_q8_1* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = x[i].qs[j] * d;
  }
}

// ---- quantize (ggml's *_ref: round to nearest, no search) ------------------

namespace {
// The element of largest magnitude, with its sign.
float SignedAbsMax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}
void MinMax(const float* x, int n, float* min, float* max) {
  *min = x[0];
  *max = x[0];
  for (int j = 1; j < n; ++j) {
    *min = std::min(*min, x[j]);
    *max = std::max(*max, x[j]);
  }
}
}  // namespace

void quantize_row_q4_0(const float* x, block_q4_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
    // The largest magnitude maps to -8 so the full [-8, 7] range is used.
    const float d = SignedAbsMax(x, kQK) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t q0 = std::min<int8_t>(15, static_cast<int8_t>(x[j] * id + 8.5f));
      const uint8_t q1 = std::min<int8_t>(15, static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f));
      y[i].qs[j] = q0 | (q1 << 4);
    }
  }
}

void quantize_row_q4_1(const float* x, block_q4_1* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
    float min, max;
    MinMax(x, kQK, &min, &max);
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t q0 = std::min<int8_t>(15, static_cast<int8_t>((x[j] - min) * id + 0.5f));
      const uint8_t q1 = std::min<int8_t>(15, static_cast<int8_t>((x[j + kQK / 2] - min) * id + 0.5f));
      y[i].qs[j] = q0 | (q1 << 4);
    }
  }
}

namespace {
// q5_0 and q5_1 store values j and j+16 of a block as one byte of low
// nibbles plus bits j and j+16 of the 32-bit high-bit word.
void PackFiveBitPair(uint8_t q0, uint8_t q1, int j, uint8_t* qs, uint32_t* qh) {
  qs[j] = (q0 & 0x0F) | ((q1 & 0x0F) << 4);
  *qh |= ((q0 & 0x10u) >> 4) << j;
  *qh |= ((q1 & 0x10u) >> 4) << (j + kQK / 2);
}
}  // namespace

void quantize_row_q5_0(const float* x, block_q5_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
    const float d = SignedAbsMax(x, kQK) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t q0 = std::min<int8_t>(31, static_cast<int8_t>(x[j] * id + 16.5f));
      const uint8_t q1 = std::min<int8_t>(31, static_cast<int8_t>(x[j + kQK / 2] * id + 16.5f));
      PackFiveBitPair(q0, q1, j, y[i].qs, &qh);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q5_1(const float* x, block_q5_1* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
    float min, max;
    MinMax(x, kQK, &min, &max);
    const float d = (max - min) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t q0 = std::min<int8_t>(31, static_cast<int8_t>((x[j] - min) * id + 0.5f));
      const uint8_t q1 = std::min<int8_t>(31, static_cast<int8_t>((x[j + kQK / 2] - min) * id + 0.5f));
      PackFiveBitPair(q0, q1, j, y[i].qs, &qh);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(sum * d);
  }
}

// ---- generic entry points --------------------------------------------------

bool IsSupportedType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16:
    case GgmlType::kQ4_0: case GgmlType::kQ4_1: case GgmlType::kQ5_0: case GgmlType::kQ5_1:
    case GgmlType::kQ8_0: case GgmlType::kQ8_1: case GgmlType::kQ2_K: case GgmlType::kQ3_K:
    case GgmlType::kQ4_K: case GgmlType::kQ5_K: case GgmlType::kQ6_K: case GgmlType::kQ8_K:
    case GgmlType::kIQ4_NL: case GgmlType::kIQ4_XS:
    case GgmlType::kTQ1_0: case GgmlType::kTQ2_0:
      return true;
    default:
      return false;
  }
}

namespace {
absl::Status CheckRow(GgmlType type, int64_t n) {
  if (!IsSupportedType(type)) {
    return absl::UnimplementedError(
        absl::StrCat("no (de)quantizer for type ", std::string(gguf::ggml_type_name(type)), " (",
                     static_cast<uint32_t>(type), ")"));
  }
  const auto traits = gguf::ggml_type_traits(type);
  if (n < 0 || n % traits->block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("row of ", n, " elements is not a multiple of ",
                                                   traits->block_size, " for ", std::string(traits->name)));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status DequantizeRow(GgmlType type, const void* x, float* y, int64_t n) {
  if (absl::Status s = CheckRow(type, n); !s.ok()) return s;
  switch (type) {
#define LLMESH_CASE(T, fn, B) \
  case GgmlType::T: fn(static_cast<const B*>(x), y, n); break;
    LLMESH_CASE(kF32, dequantize_row_f32, float)
    LLMESH_CASE(kF16, dequantize_row_f16, ggml_half)
    LLMESH_CASE(kBF16, dequantize_row_bf16, ggml_bf16)
    LLMESH_CASE(kQ4_0, dequantize_row_q4_0, block_q4_0)
    LLMESH_CASE(kQ4_1, dequantize_row_q4_1, block_q4_1)
    LLMESH_CASE(kQ5_0, dequantize_row_q5_0, block_q5_0)
    LLMESH_CASE(kQ5_1, dequantize_row_q5_1, block_q5_1)
    LLMESH_CASE(kQ8_0, dequantize_row_q8_0, block_q8_0)
    LLMESH_CASE(kQ8_1, dequantize_row_q8_1, block_q8_1)
    LLMESH_CASE(kQ2_K, dequantize_row_q2_K, block_q2_K)
    LLMESH_CASE(kQ3_K, dequantize_row_q3_K, block_q3_K)
    LLMESH_CASE(kQ4_K, dequantize_row_q4_K, block_q4_K)
    LLMESH_CASE(kQ5_K, dequantize_row_q5_K, block_q5_K)
    LLMESH_CASE(kQ6_K, dequantize_row_q6_K, block_q6_K)
    LLMESH_CASE(kQ8_K, dequantize_row_q8_K, block_q8_K)
    LLMESH_CASE(kIQ4_NL, dequantize_row_iq4_nl, block_iq4_nl)
    LLMESH_CASE(kIQ4_XS, dequantize_row_iq4_xs, block_iq4_xs)
    LLMESH_CASE(kTQ1_0, dequantize_row_tq1_0, block_tq1_0)
    LLMESH_CASE(kTQ2_0, dequantize_row_tq2_0, block_tq2_0)
#undef LLMESH_CASE
    default: break;
  }
  return absl::OkStatus();
}

absl::Status QuantizeRow(GgmlType type, const float* x, void* y, int64_t n) {
  if (absl::Status s = CheckRow(type, n); !s.ok()) return s;
  switch (type) {
#define LLMESH_CASE(T, fn, B) \
  case GgmlType::T: fn(x, static_cast<B*>(y), n); break;
    LLMESH_CASE(kF32, quantize_row_f32, float)
    LLMESH_CASE(kF16, quantize_row_f16, ggml_half)
    LLMESH_CASE(kBF16, quantize_row_bf16, ggml_bf16)
    LLMESH_CASE(kQ4_0, quantize_row_q4_0, block_q4_0)
    LLMESH_CASE(kQ4_1, quantize_row_q4_1, block_q4_1)
    LLMESH_CASE(kQ5_0, quantize_row_q5_0, block_q5_0)
    LLMESH_CASE(kQ5_1, quantize_row_q5_1, block_q5_1)
    LLMESH_CASE(kQ8_0, quantize_row_q8_0, block_q8_0)
    LLMESH_CASE(kQ8_1, quantize_row_q8_1, block_q8_1)
    LLMESH_CASE(kQ2_K, quantize_row_q2_K, block_q2_K)
    LLMESH_CASE(kQ3_K, quantize_row_q3_K, block_q3_K)
    LLMESH_CASE(kQ4_K, quantize_row_q4_K, block_q4_K)
    LLMESH_CASE(kQ5_K, quantize_row_q5_K, block_q5_K)
    LLMESH_CASE(kQ6_K, quantize_row_q6_K, block_q6_K)
    LLMESH_CASE(kQ8_K, quantize_row_q8_K, block_q8_K)
    LLMESH_CASE(kIQ4_NL, quantize_row_iq4_nl, block_iq4_nl)
    LLMESH_CASE(kIQ4_XS, quantize_row_iq4_xs, block_iq4_xs)
    LLMESH_CASE(kTQ1_0, quantize_row_tq1_0, block_tq1_0)
    LLMESH_CASE(kTQ2_0, quantize_row_tq2_0, block_tq2_0)
#undef LLMESH_CASE
    default: break;
  }
  return absl::OkStatus();
}

}  // namespace llmesh::engine
