// The inner loops of attention for one query head: scores against a run of
// cached K rows, the softmax over them, and the probability-weighted sum of
// V rows. Separate from ops.h because these run n_kv times per head per
// token (the rest of the forward pass runs once per token) and so have
// AVX-512 bodies that keep the output vector in registers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace llmesh::engine {

// scores[r] = scale * dot(q, k + r * k_stride) for r < n. Strides in floats.
void attn_scores(const float* q, const float* k, size_t k_stride, int32_t n, int64_t head_dim,
                 float scale, float* scores);

// x = exp(x - max) / sum, in place; like softmax() in ops.h, with a
// vectorised exp (relative error below 5e-7 over the range softmax uses).
void attn_softmax(float* x, int64_t n);

// o[i] += sum_r p[r] * v[r * v_stride + i] for r < n, i < head_dim.
void attn_accumulate(const float* p, const float* v, size_t v_stride, int32_t n, int64_t head_dim,
                     float* o);

}  // namespace llmesh::engine
