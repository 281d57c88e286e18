// Simple token sampling for the CLI and tests: greedy, temperature, top-k,
// top-p, with a seeded generator so the same seed gives the same text on
// every platform. (The full sampler chain with penalties and grammars is a
// separate component.)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace llmesh::engine {

struct BasicSamplingParams {
  float temperature = 0.8f;  // <= 0: greedy
  int32_t top_k = 40;        // <= 0: whole vocabulary
  float top_p = 0.95f;       // >= 1: off
  uint64_t seed = 0;
};

// Index of the largest logit (the lowest index on ties, like llama.cpp).
int32_t ArgMax(std::span<const float> logits);

class BasicSampler {
 public:
  explicit BasicSampler(const BasicSamplingParams& params);
  int32_t Sample(std::span<const float> logits);

 private:
  double NextUniform();  // [0, 1), from our own generator: std distributions vary by library

  BasicSamplingParams params_;
  uint64_t state_;
  struct Candidate {
    int32_t id;
    float p;
  };
  std::vector<Candidate> cand_;  // (n_vocab) scratch
};

}  // namespace llmesh::engine
