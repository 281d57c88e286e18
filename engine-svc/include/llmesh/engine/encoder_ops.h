// The element-wise ops an encoder (BERT) needs beyond ops.h: LayerNorm with
// bias, and GELU. Per token they cost O(n_embd) next to the O(n_embd^2)
// matmuls, so they are plain readable loops.
#pragma once

#include <cstdint>

namespace llmesh::engine {

// out[i] = (x[i] - mean(x)) / sqrt(var(x) + eps) * weight[i] + bias[i],
// mean and variance over the n values (as ggml_norm, sums in double).
// out may alias x.
void layer_norm(float* out, const float* x, const float* weight, const float* bias, int64_t n,
                float eps);

// x[i] = gelu(x[i]) in place, the tanh approximation
//   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// that llama.cpp's ggml_gelu computes. (HF BERT's exact erf form differs
// by under 1e-3, far below the error of quantized weights.)
void gelu(float* x, int64_t n);

}  // namespace llmesh::engine
