// Vocabulary-sized helpers for the sampler: written as 16-lane blocks so the
// compiler vectorizes them at -O2 without -ffast-math (a 152k-entry pass is
// the sampler's main cost). Every reduction runs in a fixed order, so results
// depend only on the input values: same logits, same bits, same token.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "llmesh/engine/sampler.h"

namespace llmesh::engine::sampler_internal {

inline constexpr size_t kLanes = 16;
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// exp(x) for x <= ~88, branch-free (Cephes expf: |rel err| ~1e-7). Results
// below float's normal range flush to 0, which is what softmax wants anyway.
inline float FastExp(float x) {
  constexpr float kMin = -87.33654f;
  constexpr float kMax = 88.37626f;
  const float xc = std::min(std::max(x, kMin), kMax);
  // Round x*log2(e) to the nearest integer n with the 1.5*2^23 trick.
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const int32_t ni = std::bit_cast<int32_t>(t) - 0x4B400000;
  const float r = xc - n * 0.693359375f - n * -2.12194440e-4f;  // x - n*ln2, two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((ni + 127) << 23);
  return x < kMin ? 0.0f : p * scale;
}

// NaN → -inf, +inf → FLT_MAX: the model's logits are not trusted to be finite,
// and one NaN or +inf would otherwise poison every probability.
inline float CleanLogit(float x) {
  return x != x ? kNegInf : std::min(x, std::numeric_limits<float>::max());
}

// Vocabulary-sized passes (sampler_math.cc): explicit 16-lane vectors,
// cloned for AVX-512 / AVX2 / baseline and picked at load time. Lane order
// is fixed and no FMA contraction happens (ISO C++ mode), so every clone
// returns the same bits.
void CopyClean(std::span<const float> in, float* out);
float MaxOf(std::span<const float> v);
// Σ exp((v[i] - shift) * scale), in 16 partial sums (error ~n/16 ulps).
float SumExp(std::span<const float> v, float shift, float scale);
// prob[i] = exp((v[i] - shift) * scale) and block_sum[b] = Σ prob over the
// 16-token block b (the last one partial).
void ExpWithBlockSums(std::span<const float> v, float shift, float scale, float* prob,
                      float* block_sum);

// Lowest index of the largest value (greedy; llama.cpp breaks ties the same way).
inline int32_t ArgMaxLowest(std::span<const float> v) {
  const float m = MaxOf(v);
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == m) return static_cast<int32_t>(i);
  }
  return 0;  // only when v is empty (all -inf still matches above)
}

// (logit desc, id asc): the order llama.cpp's sorted candidates have, with
// ties made deterministic.
inline bool ByLogit(const Sampler::Candidate& a, const Sampler::Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// The k best of v (by ByLogit) into out, sorted. One compare per element for
// the common case: a bounded min-heap whose root is the worst kept; scanning
// ids upward, an equal value never displaces the root (it has the lower id).
inline void SelectTopK(std::span<const float> v, size_t k, std::vector<Sampler::Candidate>& out) {
  out.clear();
  k = std::min(k, v.size());
  if (k == 0) return;
  for (size_t i = 0; i < k; ++i) out.push_back({static_cast<int32_t>(i), CleanLogit(v[i]), 0, 0});
  std::make_heap(out.begin(), out.end(), ByLogit);  // root = worst under ByLogit
  for (size_t i = k; i < v.size(); ++i) {
    const float x = v[i];  // NaN compares false: never enters, as -inf would
    if (x > out.front().logit) {
      std::pop_heap(out.begin(), out.end(), ByLogit);
      out.back() = {static_cast<int32_t>(i), CleanLogit(x), 0, 0};
      std::push_heap(out.begin(), out.end(), ByLogit);
    }
  }
  std::sort_heap(out.begin(), out.end(), ByLogit);
}

// Sorts c by `less` only as far as needed: chunks of 64, 256, 1024, ... are
// selected with nth_element and sorted, until done(cumulative p) holds.
// Returns the length of the prefix that satisfied it, 0 if none did.
template <class Less, class Done>
size_t SortPrefixUntil(std::span<Sampler::Candidate> c, Less less, Done done) {
  size_t sorted = 0;
  size_t chunk = 64;
  double cum = 0.0;
  while (sorted < c.size()) {
    const size_t end = std::min(c.size(), sorted + chunk);
    if (end < c.size()) std::nth_element(c.begin() + sorted, c.begin() + end - 1, c.end(), less);
    std::sort(c.begin() + sorted, c.begin() + end, less);
    for (size_t i = sorted; i < end; ++i) {
      cum += c[i].p;
      if (done(cum)) return i + 1;
    }
    sorted = end;
    chunk *= 4;
  }
  return 0;
}

// p = softmax(logit * inv_temp) over c (at least one finite logit); returns
// log Σ exp((logit - max) * inv_temp), so -log p_i = that - (logit_i - max) * inv_temp
// without a log per candidate.
inline float SoftmaxCandidates(std::span<Sampler::Candidate> c, float inv_temp, float* max_out) {
  float m = kNegInf;
  for (const auto& x : c) m = std::max(m, x.logit);
  float sum = 0.0f;
  for (auto& x : c) {
    x.p = FastExp((x.logit - m) * inv_temp);
    sum += x.p;
  }
  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (auto& x : c) x.p *= inv;
  if (max_out != nullptr) *max_out = m;
  return std::log(sum);
}

}  // namespace llmesh::engine::sampler_internal
