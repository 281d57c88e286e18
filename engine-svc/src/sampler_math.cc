// The sampler's O(n_vocab) passes. GCC 12 at -O2 does not vectorize these
// loops on its own (its "very cheap" cost model refuses them), and at 152k
// tokens they are most of the sampler's time, so they are written with GCC
// vector extensions and cloned per ISA (target_clones: resolved once at load).
#include <cstring>

#include "sampler_math.h"

// The 64-byte vector helpers below are file-local and always inlined into the
// clones, so the psABI note about passing them by value does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace llmesh::engine::sampler_internal {
namespace {

typedef float V16f __attribute__((vector_size(64)));
typedef int32_t V16i __attribute__((vector_size(64)));

[[gnu::always_inline]] inline V16f Load(const float* p) {
  V16f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

[[gnu::always_inline]] inline void Store(float* p, V16f v) { std::memcpy(p, &v, sizeof(v)); }

[[gnu::always_inline]] inline V16f Splat(float x) { return V16f{} + x; }

// FastExp, lane-wise: the same operations in the same order, so a token's
// value does not depend on whether it fell in a vector or in the tail.
[[gnu::always_inline]] inline V16f FastExpV(V16f x) {
  const V16f lo = Splat(-87.33654f);
  const V16f hi = Splat(88.37626f);
  V16f xc = x > lo ? x : lo;
  xc = xc < hi ? xc : hi;
  const V16f t = xc * 1.44269504088896341f + 12582912.0f;
  const V16f n = t - 12582912.0f;
  const V16i ni = reinterpret_cast<V16i>(t) - 0x4B400000;
  const V16f r = xc - n * 0.693359375f - n * -2.12194440e-4f;
  V16f p = Splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const V16f scale = reinterpret_cast<V16f>((ni + 127) << 23);
  const V16f y = p * scale;
  return x < lo ? V16f{} : y;
}

}  // namespace

#define LLMESH_SAMPLER_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

LLMESH_SAMPLER_CLONES
void CopyClean(std::span<const float> in, float* out) {
  const V16f fmax = Splat(std::numeric_limits<float>::max());
  const V16f ninf = Splat(kNegInf);
  size_t i = 0;
  for (; i + kLanes <= in.size(); i += kLanes) {
    const V16f x = Load(in.data() + i);
    const V16f c = x < fmax ? x : fmax;  // NaN compares false: becomes fmax here...
    Store(out + i, x == x ? c : ninf);   // ...and -inf here
  }
  for (; i < in.size(); ++i) out[i] = CleanLogit(in[i]);
}

LLMESH_SAMPLER_CLONES
float MaxOf(std::span<const float> v) {
  V16f m = Splat(kNegInf);
  size_t i = 0;
  for (; i + kLanes <= v.size(); i += kLanes) {
    const V16f x = Load(v.data() + i);
    m = x > m ? x : m;
  }
  float r = kNegInf;
  for (size_t j = 0; j < kLanes; ++j) r = m[j] > r ? m[j] : r;
  for (; i < v.size(); ++i) r = v[i] > r ? v[i] : r;
  return r;
}

LLMESH_SAMPLER_CLONES
float SumExp(std::span<const float> v, float shift, float scale) {
  V16f s{};
  size_t i = 0;
  for (; i + kLanes <= v.size(); i += kLanes) {
    s += FastExpV((Load(v.data() + i) - shift) * scale);
  }
  float r = 0.0f;
  for (size_t j = 0; j < kLanes; ++j) r += s[j];
  for (; i < v.size(); ++i) r += FastExp((v[i] - shift) * scale);
  return r;
}

LLMESH_SAMPLER_CLONES
void ExpWithBlockSums(std::span<const float> v, float shift, float scale, float* prob,
                      float* block_sum) {
  size_t i = 0;
  size_t b = 0;
  for (; i + kLanes <= v.size(); i += kLanes, ++b) {
    const V16f e = FastExpV((Load(v.data() + i) - shift) * scale);
    Store(prob + i, e);
    float s = 0.0f;
    for (size_t j = 0; j < kLanes; ++j) s += e[j];
    block_sum[b] = s;
  }
  if (i < v.size()) {
    float s = 0.0f;
    for (; i < v.size(); ++i) {
      prob[i] = FastExp((v[i] - shift) * scale);
      s += prob[i];
    }
    block_sum[b] = s;
  }
}

}  // namespace llmesh::engine::sampler_internal
