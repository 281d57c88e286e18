// Scalar reference path: every weight type, any CPU.
//
// Deliberately built from the reference dequantizers: a weight row and the
// quantized activation rows are expanded to floats and multiplied. That is
// mathematically the integer dot product of the SIMD paths (the products of
// small integers and scales are exact in float), so the SIMD kernels are
// tested against it with only summation-order differences.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"

namespace llmesh::engine::internal {

ActKind ActKindFor(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
      return ActKind::kF32;
    case GgmlType::kBF16:
      return ActKind::kBF16;
    case GgmlType::kQ2_K: case GgmlType::kQ3_K: case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: case GgmlType::kQ6_K:
    case GgmlType::kTQ1_0: case GgmlType::kTQ2_0:  // the ternary dots use q8_K's per-16 sums
      return ActKind::kQ8K;
    default:  // the 32-block family, and iq4_xs: its scales are per 32 too
      return ActKind::kQ8;
  }
}

size_t ActRowBytes(ActKind kind, int64_t n) {
  size_t bytes = 0;
  switch (kind) {
    case ActKind::kF32: bytes = n * sizeof(float); break;
    case ActKind::kBF16: bytes = n * sizeof(ggml_bf16); break;
    case ActKind::kQ8: bytes = n + 2 * sizeof(float) * (n / kQK); break;
    case ActKind::kQ8K: bytes = sizeof(block_q8_K) * (n / kQK_K); break;
  }
  return (bytes + 63) & ~size_t{63};
}

void QuantizeActScalar(ActKind kind, const float* x, void* dst, int64_t n) {
  switch (kind) {
    case ActKind::kF32:
      std::memcpy(dst, x, n * sizeof(float));
      break;
    case ActKind::kBF16:
      quantize_row_bf16(x, static_cast<ggml_bf16*>(dst), n);
      break;
    case ActKind::kQ8: {
      uint8_t* row = static_cast<uint8_t*>(dst);
      int8_t* qs = reinterpret_cast<int8_t*>(row);
      float* d = reinterpret_cast<float*>(row + n);
      float* s = d + n / kQK;
      for (int64_t b = 0; b < n / kQK; ++b) {
        const float* xb = x + b * kQK;
        float amax = 0.0f;
        for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float db = amax / 127;
        const float id = db ? 1.0f / db : 0.0f;
        int sum = 0;
        for (int j = 0; j < kQK; ++j) {
          qs[b * kQK + j] = static_cast<int8_t>(nearest_int(xb[j] * id));
          sum += qs[b * kQK + j];
        }
        d[b] = db;
        s[b] = db * static_cast<float>(sum);
      }
      break;
    }
    case ActKind::kQ8K:
      quantize_row_q8_K(x, static_cast<block_q8_K*>(dst), n);
      break;
  }
}

namespace {

void DequantizeAct(ActKind kind, const uint8_t* row, float* out, int64_t n) {
  switch (kind) {
    case ActKind::kF32: std::memcpy(out, row, n * sizeof(float)); break;
    case ActKind::kBF16: dequantize_row_bf16(reinterpret_cast<const ggml_bf16*>(row), out, n); break;
    case ActKind::kQ8:
      for (int64_t i = 0; i < n; ++i) out[i] = Q8D(row, n)[i / kQK] * Q8Qs(row)[i];
      break;
    case ActKind::kQ8K: dequantize_row_q8_K(reinterpret_cast<const block_q8_K*>(row), out, n); break;
  }
}

template <GgmlType kType>
void ScalarTileImpl(int64_t n, const uint8_t* w, size_t w_stride, int nr, const uint8_t* x,
                    size_t x_stride, int nt, float* y, int64_t ldy) {
  const ActKind kind = ActKindFor(kType);
  thread_local std::vector<float> xf, wf;
  xf.resize(static_cast<size_t>(n) * nt);
  wf.resize(n);
  for (int t = 0; t < nt; ++t) DequantizeAct(kind, x + t * x_stride, xf.data() + t * n, n);
  for (int r = 0; r < nr; ++r) {
    (void)DequantizeRow(kType, w + r * w_stride, wf.data(), n);
    for (int t = 0; t < nt; ++t) {
      const float* xt = xf.data() + t * n;
      // Blocked double accumulation: the reference should be the most
      // accurate path, not just another summation order.
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(wf[i]) * xt[i];
      y[t * ldy + r] = static_cast<float>(sum);
    }
  }
}

}  // namespace

TileFn ScalarTile(GgmlType type) {
  switch (type) {
#define LLMESH_CASE(T) \
  case GgmlType::T: return &ScalarTileImpl<GgmlType::T>;
    LLMESH_CASE(kF32) LLMESH_CASE(kF16) LLMESH_CASE(kBF16)
    LLMESH_CASE(kQ4_0) LLMESH_CASE(kQ4_1) LLMESH_CASE(kQ5_0) LLMESH_CASE(kQ5_1) LLMESH_CASE(kQ8_0)
    LLMESH_CASE(kQ2_K) LLMESH_CASE(kQ3_K) LLMESH_CASE(kQ4_K) LLMESH_CASE(kQ5_K) LLMESH_CASE(kQ6_K)
    LLMESH_CASE(kIQ4_NL) LLMESH_CASE(kIQ4_XS)
    LLMESH_CASE(kTQ1_0) LLMESH_CASE(kTQ2_0)
#undef LLMESH_CASE
    default: return nullptr;
  }
}

}  // namespace llmesh::engine::internal
