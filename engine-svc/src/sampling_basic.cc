#include "llmesh/engine/sampling_basic.h"

#include <algorithm>
#include <cmath>

namespace llmesh::engine {

int32_t ArgMax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

BasicSampler::BasicSampler(const BasicSamplingParams& params)
    : params_(params), state_(params.seed ^ 0x9E3779B97F4A7C15ull) {}

double BasicSampler::NextUniform() {
  // splitmix64: tiny, seedable from any value, identical everywhere.
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int32_t BasicSampler::Sample(std::span<const float> logits) {
  if (logits.empty()) return 0;
  if (!(params_.temperature > 0.0f)) return ArgMax(logits);

  // top-k by logit, then softmax at the temperature over the survivors.
  const int32_t n = static_cast<int32_t>(logits.size());
  const int32_t k = params_.top_k > 0 ? std::min(params_.top_k, n) : n;
  cand_.resize(n);
  for (int32_t i = 0; i < n; ++i) cand_[i] = {i, logits[i]};
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.p > b.p || (a.p == b.p && a.id < b.id);  // ties by id: deterministic
  };
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), by_logit);
  cand_.resize(k);
  const float max_l = cand_[0].p;
  double sum = 0.0;
  for (Candidate& c : cand_) {
    c.p = std::exp((c.p - max_l) / params_.temperature);
    sum += c.p;
  }
  for (Candidate& c : cand_) c.p = static_cast<float>(c.p / sum);

  // top-p: the smallest prefix whose mass reaches p (at least one token).
  size_t keep = cand_.size();
  if (params_.top_p < 1.0f) {
    double cum = 0.0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += cand_[i].p;
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double mass = 0.0;
  for (size_t i = 0; i < keep; ++i) mass += cand_[i].p;
  const double r = NextUniform() * mass;
  double acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += cand_[i].p;
    if (r < acc) return cand_[i].id;
  }
  return cand_[keep - 1].id;
}

}  // namespace llmesh::engine
