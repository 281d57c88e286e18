// Sampler chain cost per token (µs) at real vocabulary sizes: llama-2 (32000)
// and Qwen2 (152064). Logits are a peaked "model-like" distribution (a few
// strong candidates over a normal tail), re-drawn per iteration from a small
// pool so caches see what a decode loop sees. Every sampled token is accepted,
// so the penalty window and mirostat state evolve as in real decoding.
#include <memory>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "llmesh/engine/sampler.h"

namespace {

using llmesh::engine::Sampler;
using llmesh::engine::SamplingConfig;

std::vector<std::vector<float>> LogitPool(int32_t n_vocab) {
  std::mt19937_64 rng(1);
  std::normal_distribution<float> tail(0.0f, 2.0f);
  std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
  std::vector<std::vector<float>> pool(8, std::vector<float>(n_vocab));
  for (auto& l : pool) {
    for (float& x : l) x = tail(rng);
    for (int i = 0; i < 20; ++i) l[pick(rng)] += 12.0f - 0.5f * i;
  }
  return pool;
}

void Run(benchmark::State& state, SamplingConfig c) {
  const int32_t n_vocab = static_cast<int32_t>(state.range(0));
  const auto pool = LogitPool(n_vocab);
  c.seed = 42;
  auto s = Sampler::Create(c, n_vocab);
  if (!s.ok()) {
    state.SkipWithError("Create failed");
    return;
  }
  Sampler& sampler = **s;
  size_t i = 0;
  for (auto _ : state) {
    const auto r = sampler.Sample(pool[i++ % pool.size()]);
    sampler.Accept(r.token);
    benchmark::DoNotOptimize(r.token);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Greedy(benchmark::State& state) {
  SamplingConfig c;
  c.temperature = 0.0f;
  Run(state, c);
}

void BM_Temperature(benchmark::State& state) {  // the proto defaults: full-vocabulary draw
  Run(state, SamplingConfig{});
}

void BM_TopKTopPTemp(benchmark::State& state) {  // llama.cpp's CLI defaults plus penalties
  SamplingConfig c;
  c.top_k = 40;
  c.top_p = 0.95f;
  c.min_p = 0.05f;
  c.temperature = 0.8f;
  c.repetition_penalty = 1.1f;
  Run(state, c);
}

void BM_TopPOnly(benchmark::State& state) {  // OpenAI-style: top_p without top_k
  SamplingConfig c;
  c.top_p = 0.9f;
  c.temperature = 0.7f;
  Run(state, c);
}

void BM_TopLogprobs(benchmark::State& state) {
  SamplingConfig c;
  c.temperature = 0.0f;
  c.n_top_logprobs = 20;
  Run(state, c);
}

void BM_MirostatV1(benchmark::State& state) {
  SamplingConfig c;
  c.mirostat = 1;
  Run(state, c);
}

void BM_MirostatV2(benchmark::State& state) {
  SamplingConfig c;
  c.mirostat = 2;
  Run(state, c);
}

#define SAMPLER_BENCH(fn) BENCHMARK(fn)->Arg(32000)->Arg(152064)->Unit(benchmark::kMicrosecond)
SAMPLER_BENCH(BM_Greedy);
SAMPLER_BENCH(BM_Temperature);
SAMPLER_BENCH(BM_TopKTopPTemp);
SAMPLER_BENCH(BM_TopPOnly);
SAMPLER_BENCH(BM_TopLogprobs);
SAMPLER_BENCH(BM_MirostatV1);
SAMPLER_BENCH(BM_MirostatV2);

}  // namespace

BENCHMARK_MAIN();
