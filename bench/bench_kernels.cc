// Kernel throughput at TinyLlama-1.1B shapes: matvec (decode, n_tok = 1) is
// reported as weight bytes/s against the machine's measured read bandwidth;
// matmul (n_tok = 4, 16: a continuous batch; 32: prefill) as FLOP/s; the
// "/packed" variants multiply the load-time repacked copy (weight_pack.h).
//   bench_kernels --benchmark_filter='MatVec/q4_0'
//   bench_kernels --simd=avx2 ...     (force a lower SIMD level: scalar, avx2, avx512)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "llmesh/engine/matmul.h"
#include "llmesh/engine/membw.h"
#include "llmesh/engine/quants.h"
#include "llmesh/engine/weight_pack.h"

namespace llmesh::engine {
namespace {

using gguf::GgmlType;

ThreadPool& Pool(int n) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[n];
  if (!p) p = std::make_unique<ThreadPool>(n);
  return *p;
}

// Weights are built by quantizing Gaussian rows once per (type, shape) and
// reused; 32000x2048 F32 would be 262 MB, so shapes are cached, not copied.
struct Matrix {
  std::vector<uint8_t> data;
  WeightView view;
  PackedWeights store;
  WeightView packed;  // == view when the type has no packed layout
};

const Matrix& GetMatrix(GgmlType type, int64_t n_in, int64_t n_out) {
  static std::map<std::tuple<int, int64_t, int64_t>, std::unique_ptr<Matrix>> cache;
  auto& m = cache[{static_cast<int>(type), n_in, n_out}];
  if (!m) {
    m = std::make_unique<Matrix>();
    const size_t row_bytes = *gguf::ggml_row_size(type, n_in);
    m->data.resize(row_bytes * n_out);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist;
    std::vector<float> row(n_in);
    // Quantize a handful of distinct rows and tile them: K-quant reference
    // quantization of 65M elements would take minutes.
    const int64_t distinct = std::min<int64_t>(n_out, 64);
    for (int64_t r = 0; r < distinct; ++r) {
      for (float& v : row) v = dist(rng);
      (void)QuantizeRow(type, row.data(), m->data.data() + r * row_bytes, n_in);
    }
    for (int64_t r = distinct; r < n_out; ++r) {
      std::memcpy(m->data.data() + r * row_bytes, m->data.data() + (r % distinct) * row_bytes, row_bytes);
    }
    m->view = WeightView{type, n_in, n_out, m->data.data(), row_bytes};
    m->packed = m->view;
    m->store.Pack(&m->packed);
  }
  return *m;
}

// Measured right after each matvec benchmark: this VM's bandwidth swings
// 2x with neighbours' load, so only a ratio taken side by side means much.
double Bandwidth(int threads) { return MeasureReadBandwidth(Pool(threads), size_t{256} << 20); }

void BM_MatMul(benchmark::State& state, GgmlType type, int64_t n_tok, bool packed) {
  const int64_t n_out = state.range(0), n_in = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const Matrix& m = GetMatrix(type, n_in, n_out);
  const WeightView& view = packed ? m.packed : m.view;
  std::vector<float> x(n_tok * n_in, 0.5f), y(n_tok * n_out);
  ThreadPool& pool = Pool(threads);
  for (auto _ : state) {
    MatMul(pool, view, x.data(), n_tok, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double bytes = static_cast<double>(m.data.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * n_in * n_out * n_tok * state.iterations(),
                                                benchmark::Counter::kIsRate);
  if (n_tok == 1) {
    const double bw = Bandwidth(threads);
    state.counters["bw_GBps"] = bw;
    state.counters["GBps"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  }
  state.SetLabel(SimdLevelName(ActiveSimdLevel()));
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) {
    for (auto [n_out, n_in] : {std::pair<int64_t, int64_t>{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}}) {
      b->Args({n_out, n_in, threads});
    }
  }
  b->ArgNames({"n_out", "n_in", "threads"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void Register() {
  for (GgmlType t : {GgmlType::kQ4_0, GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kF16,
                     GgmlType::kBF16, GgmlType::kF32, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                     GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ5_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS,
                     GgmlType::kTQ1_0, GgmlType::kTQ2_0}) {
    const std::string name(gguf::ggml_type_name(t));
    for (bool packed : {false, true}) {
      // Packed rows (weight_pack.h) exist for every type but Q2_K, Q3_K and the floats on AVX-512 VNNI.
      if (packed && !WantsPacking(WeightView{t, 256, 16, nullptr, 0})) continue;
      const std::string suffix = packed ? "/packed" : "";
      for (int64_t n_tok : {1, 4, 16, 32}) {
        const std::string kind = n_tok == 1 ? "MatVec/" : "MatMul" + std::to_string(n_tok) + "/";
        benchmark::RegisterBenchmark((kind + name + suffix).c_str(), BM_MatMul, t, n_tok, packed)->Apply(Shapes);
      }
    }
  }
}

}  // namespace
}  // namespace llmesh::engine

int main(int argc, char** argv) {
  // --simd=NAME: our flag, removed before google-benchmark parses the rest.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--simd=", 0) != 0) {
      argv[kept++] = argv[i];
      continue;
    }
    using llmesh::engine::SimdLevel;
    for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512, SimdLevel::kAvx512Vnni}) {
      if (arg.substr(7) == llmesh::engine::SimdLevelName(l)) llmesh::engine::SetSimdLevel(l);
    }
  }
  argc = kept;
  llmesh::engine::Register();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
