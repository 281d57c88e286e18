// `llmesh bench`: prompt processing and generation speed, like llama-bench,
// plus the memory read bandwidth measured in the same run, since decode is
// memory-bound and this machine's bandwidth swings from run to run. Given
// several files (one model in several weight formats), it ends with a table
// of each one's decode efficiency and its speeds relative to the first: a
// format that falls behind the others shows in one run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "llmesh/engine/batch.h"
#include "llmesh/engine/forward.h"
#include "llmesh/engine/matmul.h"
#include "llmesh/engine/membw.h"
#include "llmesh/engine/model.h"
#include "nlohmann/json.hpp"

namespace llmesh::cli {
namespace {

using engine::Batch;
using engine::ForwardContext;
using engine::ForwardOutput;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Fail(const absl::Status& s) {
  std::fprintf(stderr, "error: %s\n", std::string(s.ToString()).c_str());
  throw CLI::RuntimeError(1);
}

struct Stats {
  double median = 0, mean = 0, stddev = 0, min = 0, max = 0;
  std::vector<double> samples;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  s.samples = v;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(n);
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = n > 1 ? std::sqrt(s.stddev / static_cast<double>(n - 1)) : 0.0;
  return s;
}

// Token ids that are any valid id; speed does not depend on which.
std::vector<int32_t> BenchTokens(int64_t n_vocab, int n) {
  std::vector<int32_t> t(n);
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t[i] = static_cast<int32_t>(x % static_cast<uint64_t>(n_vocab));
  }
  return t;
}

struct Args {
  std::vector<std::string> models;
  int threads = 0;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 5;
  bool json = false;
  size_t bw_mib = 1024;
};

struct Result {
  std::string name;
  double pp = 0, tg = 0, efficiency = 0;  // medians
};

Result RunBench(const Args& a, const std::string& path) {
  auto loaded = engine::Model::Load(path);
  if (!loaded.ok()) Fail(loaded.status());
  const engine::Model& m = **loaded;
  const engine::ModelParams& hp = m.params();
  engine::ThreadPool pool(a.threads);
  ForwardContext ctx(m, pool, std::max(1, a.n_prompt));
  const int32_t n_ctx = std::max(1, std::max(a.n_prompt, a.n_gen));
  if (n_ctx > hp.n_ctx_train) {
    std::fprintf(stderr, "warning: %d positions exceed the model's context %lld\n", n_ctx,
                 static_cast<long long>(hp.n_ctx_train));
  }
  auto kv = engine::MakeKvCache(m, n_ctx, 1);
  const std::vector<int32_t> toks = BenchTokens(hp.n_vocab, std::max(a.n_prompt, a.n_gen));
  ForwardOutput out;

  // pp: one batch of n_prompt tokens into an empty cache, last logits only.
  auto run_pp = [&]() {
    kv->RemoveSeq(0);
    Batch b;
    b.AddSequence({toks.begin(), toks.begin() + a.n_prompt}, 0, 0);
    const auto t0 = Clock::now();
    if (auto s = ctx.Decode(b, *kv, &out); !s.ok()) Fail(s);
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  // tg: n_gen single-token steps from an empty cache, as llama-bench's tg.
  auto run_tg = [&]() {
    kv->RemoveSeq(0);
    Batch b;
    const auto t0 = Clock::now();
    for (int i = 0; i < a.n_gen; ++i) {
      b.Clear();
      b.Add(toks[i], i, 0, true);
      if (auto s = ctx.Decode(b, *kv, &out); !s.ok()) Fail(s);
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };

  std::vector<double> pp, tg;
  if (a.n_prompt > 0) {
    run_pp();  // warm-up: page in the weights, size the scratch buffers
    for (int r = 0; r < a.reps; ++r) pp.push_back(a.n_prompt / run_pp());
  }
  const double bw_before = engine::MeasureReadBandwidth(pool, a.bw_mib << 20);
  if (a.n_gen > 0) {
    run_tg();
    for (int r = 0; r < a.reps; ++r) tg.push_back(a.n_gen / run_tg());
  }
  const double bw_after = engine::MeasureReadBandwidth(pool, a.bw_mib << 20);
  const double bw = 0.5 * (bw_before + bw_after);  // GB/s around the decode runs
  const Stats pps = Summarize(pp), tgs = Summarize(tg);

  // Bytes each decode step streams: every weight matrix once, plus the K/V
  // of the average position (n_gen / 2 positions).
  const double kv_bytes = static_cast<double>(hp.n_layer) *
                          static_cast<double>(hp.n_embd_k_gqa() + hp.n_embd_v_gqa()) *
                          sizeof(float) * (a.n_gen / 2.0);
  const double bytes_per_tok = static_cast<double>(m.BytesPerDecodedToken()) + kv_bytes;
  const double roofline_tps = bw * 1e9 / bytes_per_tok;
  const double efficiency = tgs.median / roofline_tps;

  const std::string name = std::filesystem::path(path).filename().string();
  const Result result{name, pps.median, tgs.median, efficiency};
  const double size = static_cast<double>(m.TensorBytes());
  const double params = static_cast<double>(m.ParameterCount());
  const std::string simd = engine::SimdLevelName(engine::ActiveSimdLevel());
  if (a.json) {
    nlohmann::json j;
    j["model"] = name;
    j["arch"] = std::string(engine::ArchName(hp.arch));
    j["size_bytes"] = size;
    j["params"] = params;
    j["threads"] = pool.n_threads();
    j["simd"] = simd;
    j["repetitions"] = a.reps;
    auto stat = [](const Stats& s) {
      return nlohmann::json{{"median", s.median}, {"mean", s.mean}, {"stddev", s.stddev},
                            {"min", s.min},       {"max", s.max},   {"samples", s.samples}};
    };
    if (a.n_prompt > 0) j["pp"] = {{"n_tokens", a.n_prompt}, {"tok_per_s", stat(pps)}};
    if (a.n_gen > 0) j["tg"] = {{"n_tokens", a.n_gen}, {"tok_per_s", stat(tgs)}};
    j["read_bandwidth_gbps"] = {{"before", bw_before}, {"after", bw_after}, {"mean", bw}};
    j["bytes_per_token"] = bytes_per_tok;
    j["tg_roofline_tok_per_s"] = roofline_tps;
    j["decode_efficiency"] = efficiency;
    std::printf("%s\n", j.dump(2).c_str());
    return result;
  }
  std::printf("| %-24s | %11s | %9s | %7s | %10s | %8s | %22s |\n", "model", "size", "params",
              "threads", "simd", "test", "t/s (median ± sd)");
  std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", std::string(24, '-').c_str(),
              std::string(11, '-').c_str(), std::string(9, '-').c_str(),
              std::string(7, '-').c_str(), std::string(10, '-').c_str(),
              std::string(8, '-').c_str(), std::string(22, '-').c_str());
  auto row = [&](const char* kind, int n, const Stats& s) {
    const std::string test = absl::StrFormat("%s%d", kind, n);
    const std::string tps = absl::StrFormat("%.2f ± %.2f", s.median, s.stddev);
    std::printf("| %-24s | %7.2f MiB | %7.2f M | %7d | %10s | %8s | %22s |\n", name.c_str(),
                size / 1048576.0, params / 1e6, pool.n_threads(), simd.c_str(), test.c_str(),
                tps.c_str());
  };
  if (a.n_prompt > 0) row("pp", a.n_prompt, pps);
  if (a.n_gen > 0) row("tg", a.n_gen, tgs);
  std::printf("\nrepetitions %d; pp range %.1f..%.1f, tg range %.1f..%.1f tok/s\n", a.reps, pps.min,
              pps.max, tgs.min, tgs.max);
  std::printf("memory read bandwidth: %.1f GB/s (%.1f before, %.1f after decode)\n", bw, bw_before,
              bw_after);
  std::printf("decode reads %.2f MiB/token -> roofline %.1f tok/s; efficiency %.1f%%\n",
              bytes_per_tok / 1048576.0, roofline_tps, 100.0 * efficiency);
  return result;
}

void PrintComparison(const std::vector<Result>& rs) {
  std::printf("\n| %-28s | %9s | %9s | %10s | %8s | %8s |\n", "model", "pp t/s", "tg t/s", "efficiency",
              "pp / 1st", "tg / 1st");
  std::printf("| %s | --------- | --------- | ---------- | -------- | -------- |\n", std::string(28, '-').c_str());
  for (const Result& r : rs) {
    auto ratio = [](double x, double base) { return base > 0 ? x / base : 0.0; };
    std::printf("| %-28s | %9.1f | %9.1f | %9.1f%% | %8.2f | %8.2f |\n", r.name.c_str(), r.pp, r.tg,
                100.0 * r.efficiency, ratio(r.pp, rs[0].pp), ratio(r.tg, rs[0].tg));
  }
}

}  // namespace

void RegisterBenchCommands(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("bench", "Prefill/decode speed and decode efficiency");
  cmd->add_option("MODEL", a->models, "GGUF model files (several: a comparison table at the end)")->required();
  cmd->add_option("-t,--threads", a->threads, "Threads (0 = all cores)");
  cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens (pp test)")->capture_default_str();
  cmd->add_option("-n,--n-gen", a->n_gen, "Generated tokens (tg test)")->capture_default_str();
  cmd->add_option("-r,--repetitions", a->reps, "Repetitions")->capture_default_str();
  cmd->add_option("--bw-mib", a->bw_mib, "Bandwidth test buffer (MiB)")->capture_default_str();
  cmd->add_flag("--json", a->json, "Print JSON instead of a table (one object per model)");
  cmd->callback([a] {
    if (a->reps < 1 || a->n_prompt < 0 || a->n_gen < 0) {
      Fail(absl::InvalidArgumentError("need -r >= 1, -p >= 0, -n >= 0"));
    }
    std::vector<Result> results;
    for (const std::string& path : a->models) {
      if (!results.empty() && !a->json) std::printf("\n");
      results.push_back(RunBench(*a, path));
    }
    if (results.size() > 1 && !a->json) PrintComparison(results);
  });
}

}  // namespace llmesh::cli
