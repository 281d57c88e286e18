// The inner loops of attention for the query heads that share one K/V head
// (all n_gqa of them under grouped-query attention, or one): scores against a
// run of cached K rows, the softmax over them, and the probability-weighted
// sum of V rows. Separate from ops.h because these run n_kv times per head per
// token (the rest of the forward pass runs once per token) and so have
// AVX-512 bodies that keep the outputs in registers and load each cached row
// once for all the heads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace llmesh::engine {

// scores[h * s_stride + r] = scale * dot(q + h * head_dim, k + r * k_stride)
// for h < n_heads, r < n. Strides in floats.
void attn_scores(const float* q, int64_t n_heads, const float* k, size_t k_stride, int32_t n, int64_t head_dim,
                 float scale, float* scores, size_t s_stride);

// x = exp(x - max) / sum, in place; like softmax() in ops.h, with a
// vectorised exp (relative error below 5e-7 over the range softmax uses).
void attn_softmax(float* x, int64_t n);

// o[h * head_dim + i] += sum_r p[h * p_stride + r] * v[r * v_stride + i] for
// h < n_heads, r < n, i < head_dim.
void attn_accumulate(const float* p, size_t p_stride, int64_t n_heads, const float* v, size_t v_stride, int32_t n,
                     int64_t head_dim, float* o);

}  // namespace llmesh::engine
