// Serving throughput of the continuous-batching scheduler: N concurrent
// greedy streams of the same length; aggregate tokens/s end to end (from
// submitting the prompts) and in the decode phase (after the first token),
// TTFT and inter-token latency percentiles. Runs on stories260K by default; set
// LLMESH_BENCH_MODEL=/path/to/model.gguf for another (e.g. a synthesized
// TinyLlama: `llmesh synth --shape tinyllama-1.1b --type Q4_0 ...`).
//
//   bench_serving --benchmark_filter=Serve/16
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include <benchmark/benchmark.h>

#include "llmesh/engine/model.h"
#include "llmesh/engine/scheduler.h"
#include "llmesh/engine/thread_pool.h"

namespace {

using namespace llmesh::engine;

std::string ModelPath() {
  const char* env = std::getenv("LLMESH_BENCH_MODEL");
  return env ? env : std::string(LLMESH_SHARED_DIR) + "/models/stories260K.gguf";
}

int GenTokens() {
  const char* env = std::getenv("LLMESH_BENCH_TOKENS");
  return env ? std::atoi(env) : 64;
}

// Records when each token of one stream arrives.
class TimingSink : public GenerationSink {
 public:
  void OnToken(int32_t, const SampleResult&) override {
    std::lock_guard lock(mu_);
    times_.push_back(absl::Now());
  }
  void OnFinish(int32_t, FinishReason reason, const GenerationUsage&, const std::string&) override {
    std::lock_guard lock(mu_);
    reason_ = reason;
    done_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }
  std::vector<absl::Time> times_;
  FinishReason reason_ = FinishReason::kNone;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

// Aggregate tok/s per stream count, end to end (prefill included) and in the
// decode phase, for the ratios printed after the run.
struct Aggregate {
  double total = 0, decode = 0;
};
std::map<int, Aggregate>& AggregateByStreams() {
  static std::map<int, Aggregate> m;
  return m;
}

void Serve(benchmark::State& state) {
  const int n_streams = static_cast<int>(state.range(0));
  static std::unique_ptr<Model> model;
  if (!model) {
    auto m = Model::Load(ModelPath());
    if (!m.ok()) {
      state.SkipWithError(std::string(m.status().message()).c_str());
      return;
    }
    model = std::move(*m);
  }
  ThreadPool pool(0);
  SchedulerConfig cfg;
  cfg.max_seqs = std::max(n_streams, 1);
  cfg.max_batch_tokens = std::max(256, n_streams);
  cfg.max_queue = 1024;
  cfg.n_ctx = std::min<int32_t>(static_cast<int32_t>(model->params().n_ctx_train), 512);
  cfg.kv_budget_bytes = size_t{1} << 30;
  auto sched = Scheduler::Create(*model, pool, cfg);
  if (!sched.ok()) {
    state.SkipWithError(std::string(sched.status().message()).c_str());
    return;
  }
  static int64_t next_prompt = 0;
  const int gen = GenTokens();
  const int n_vocab = static_cast<int>(model->params().n_vocab);
  std::vector<double> ttft, itl;
  int64_t tokens = 0, decode_tokens = 0;
  double seconds = 0, decode_seconds = 0;
  for (auto _ : state) {
    std::vector<std::shared_ptr<TimingSink>> sinks;
    absl::Time start = absl::Now();
    for (int i = 0; i < n_streams; ++i) {
      GenerationRequest req;
      // 16-token prompts distinct across streams and iterations, so none rides
      // on the prefix cache (a repeated prompt skipped its prefill).
      const int64_t serial = next_prompt++;
      req.prompt = {1, static_cast<TokenId>(2 + serial % (n_vocab - 2)),
                    static_cast<TokenId>(2 + serial / (n_vocab - 2) % (n_vocab - 2))};
      for (int t = 0; t < 13; ++t) req.prompt.push_back(2 + (i * 31 + t * 7) % (n_vocab - 2));
      req.sampling.temperature = 0;
      req.max_tokens = gen;
      req.ignore_eos = true;
      auto sink = std::make_shared<TimingSink>();
      sinks.push_back(sink);
      if (auto id = (*sched)->Submit(std::move(req), sink); !id.ok()) {
        state.SkipWithError(std::string(id.status().message()).c_str());
        return;
      }
    }
    for (auto& s : sinks) s->Wait();
    seconds += absl::ToDoubleSeconds(absl::Now() - start);
    // The decode phase: every token after each stream's first, over the time
    // from the first first-token to the last token (prompts' prefill excluded).
    absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
    for (auto& s : sinks) {
      if (s->times_.empty()) continue;
      first = std::min(first, s->times_.front());
      last = std::max(last, s->times_.back());
      decode_tokens += static_cast<int64_t>(s->times_.size()) - 1;
    }
    if (last > first) decode_seconds += absl::ToDoubleSeconds(last - first);
    for (auto& s : sinks) {
      tokens += static_cast<int64_t>(s->times_.size());
      if (s->times_.empty()) continue;
      ttft.push_back(absl::ToDoubleMilliseconds(s->times_[0] - start));
      for (size_t k = 1; k < s->times_.size(); ++k)
        itl.push_back(absl::ToDoubleMilliseconds(s->times_[k] - s->times_[k - 1]));
    }
  }
  state.counters["streams"] = n_streams;
  state.counters["agg_tok_per_s"] = seconds > 0 ? tokens / seconds : 0;
  state.counters["decode_tok_per_s"] = decode_seconds > 0 ? decode_tokens / decode_seconds : 0;
  AggregateByStreams()[n_streams] = {seconds > 0 ? tokens / seconds : 0,
                                     decode_seconds > 0 ? decode_tokens / decode_seconds : 0};
  state.counters["ttft_p50_ms"] = Percentile(ttft, 0.5);
  state.counters["ttft_p99_ms"] = Percentile(ttft, 0.99);
  state.counters["itl_p50_ms"] = Percentile(itl, 0.5);
  state.counters["itl_p99_ms"] = Percentile(itl, 0.99);
}

// Each stream count runs for several seconds: one stream's figure is the
// denominator of every ratio, and 2 runs of it (under 2 s) moved by 15%
// between runs on a shared VM.
BENCHMARK(Serve)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(8);
BENCHMARK(Serve)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);
BENCHMARK(Serve)->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // Batching's gain, from this run: aggregate throughput against one stream's.
  const auto& agg = AggregateByStreams();
  if (auto one = agg.find(1); one != agg.end() && one->second.total > 0 && one->second.decode > 0) {
    for (const auto& [streams, a] : agg) {
      if (streams == 1) continue;
      std::printf("%2d streams: %.2fx the single-stream throughput end to end, %.2fx in the decode phase\n", streams,
                  a.total / one->second.total, a.decode / one->second.decode);
    }
  }
  return 0;
}
