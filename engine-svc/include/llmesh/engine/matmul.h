// Weight x activation products: the hot path of every forward pass.
//
// Weights stay in their GGUF type; activations are quantized on the fly to the
// type the weight's dot product wants (Q8_0 for the 32-blocks, Q8_K for the
// K-quants, F32/F16/BF16 handled in float), as llama.cpp does.
#pragma once

#include <cstdint>
#include <span>

#include "llmesh/engine/thread_pool.h"
#include "llmesh/gguf/ggml_type.h"

namespace llmesh::engine {

// A 2-D weight matrix in GGUF layout: n_out rows of n_in elements each,
// row-major, rows `row_bytes` apart. Usually a view into the mapped file.
struct WeightView {
  gguf::GgmlType type;
  int64_t n_in;      // ne[0]
  int64_t n_out;     // ne[1]
  const void* data;
  size_t row_bytes;
  // The same rows interleaved for the batched kernels (weight_pack.h), or
  // null. Used when the active SIMD level has a packed kernel for the type.
  const uint8_t* packed = nullptr;
};

// y[t][o] = sum_i W[o][i] * x[t][i] for t < n_tok.
// x: (n_tok, n_in) row-major floats; y: (n_tok, n_out) row-major floats.
// Work is split over the pool's threads by output rows.
void MatMul(ThreadPool& pool, const WeightView& w, const float* x, int64_t n_tok, float* y);

// MatMul of several matrices with the same input (a layer's Q, K and V, or
// its gate and up projections): ys[i] = x * ws[i]. Consecutive ones that are
// packed, of one type, share one activation quantization and one parallel
// region, split by rows over all of them (K and V alone are too small to
// split well).
void MatMulMany(ThreadPool& pool, std::span<const WeightView* const> ws, const float* x, int64_t n_tok,
                std::span<float* const> ys);

// Instruction-set level the kernels dispatch to, chosen once from CPUID.
enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3 };
SimdLevel DetectedSimdLevel();
const char* SimdLevelName(SimdLevel level);
// Forces a level (tests compare every level against kScalar). Clamped to the
// detected one. Not thread-safe with concurrent MatMul calls.
void SetSimdLevel(SimdLevel level);
SimdLevel ActiveSimdLevel();

}  // namespace llmesh::engine
