// Small vector operations of the forward pass (everything but the matmuls).
// Vectorised with AVX2/AVX-512 where the CPU has them; same results within
// float rounding on every path.
#pragma once

#include <cstdint>

namespace llmesh::engine {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]. out may alias x.
void rms_norm(float* out, const float* x, const float* weight, int64_t n, float eps);
// x = exp(x - max) / sum, in place.
void softmax(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i] (SwiGLU). out may alias gate or up.
void swiglu(float* out, const float* gate, const float* up, int64_t n);
// out[i] = gelu(gate[i]) * up[i] (GEGLU, GELU's tanh approximation as
// Gemma and ggml use it). out may alias gate or up.
void geglu(float* out, const float* gate, const float* up, int64_t n);
// x[i] = cap * tanh(x[i] / cap) (Gemma 2's soft-capping).
void softcap(float* x, float cap, int64_t n);
// out[i] = a[i] + b[i]. out may alias a or b.
void add(float* out, const float* a, const float* b, int64_t n);
// x[i] *= s
void scale(float* x, float s, int64_t n);
// sum_i a[i] * b[i]
float dot_f32(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
void axpy(float* y, float a, const float* x, int64_t n);

}  // namespace llmesh::engine
