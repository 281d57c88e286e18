// rag library speed and dense recall, with a fake embedder (random unit
// vectors of dimension 384, seeded by the text) and a word-count tokenizer:
//   BM_IngestSmallBatches   durable upserts of 16 one-chunk documents (one
//                           fsync'd SQLite commit + HNSW adds each)
//   BM_Build100k            100k chunks in upserts of 1000 (built once, reused)
//   BM_Query/{dense,lexical,hybrid}  latency at 100k chunks, p50/p99 counters
//   BM_DenseRecallAt10      HNSW (via dense Query) vs exact brute force
// Keep the whole run under ~2 min: ./bench_rag
#include <algorithm>
#include <filesystem>
#include <random>

#include <benchmark/benchmark.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "llmesh/rag/rag.h"

namespace llmesh::rag {
namespace {

constexpr int kDim = 384;
constexpr int kChunks = 100000;

class RandomEmbedder : public Embedder {
 public:
  absl::StatusOr<std::vector<std::vector<float>>> Embed(const std::string&,
                                                        const std::vector<std::string>& texts) override {
    std::vector<std::vector<float>> out;
    for (const auto& t : texts) out.push_back(Vector(t));
    return out;
  }
  static std::vector<float> Vector(const std::string& text) {
    std::mt19937 rng(static_cast<uint32_t>(std::hash<std::string>{}(text)));
    std::normal_distribution<float> n;
    std::vector<float> v(kDim);
    for (auto& x : v) x = n(rng);
    Normalize(v);
    return v;
  }
};

class WordCounter : public TokenCounter {
 public:
  absl::StatusOr<std::vector<int32_t>> Count(const std::string&, const std::vector<std::string>& texts) override {
    std::vector<int32_t> out;
    for (const auto& t : texts) out.push_back(static_cast<int32_t>(std::count(t.begin(), t.end(), ' ') + 1));
    return out;
  }
};

std::string Word(uint32_t i) { return absl::StrCat("w", i % 5000); }

std::string DocText(int i) {
  std::mt19937 rng(static_cast<uint32_t>(i));
  std::string s = absl::StrCat("doc", i);
  for (int w = 0; w < 12; ++w) absl::StrAppend(&s, " ", Word(rng()));
  return s + ".";
}

std::unique_ptr<Rag> OpenRag(const std::string& leaf) {
  std::string dir = (std::filesystem::temp_directory_path() / leaf).string();
  std::filesystem::remove_all(dir);
  RagOptions o;
  o.data_dir = dir;
  return std::move(*Rag::Open(o));
}

CollectionConfig Config(const std::string& name) {
  CollectionConfig c;
  c.name = name;
  c.embedding_model = "fake";
  c.dimension = kDim;
  c.chunking = {256, 0};
  c.hnsw = {16, 100, 64};
  return c;
}

RandomEmbedder g_embedder;
WordCounter g_counter;

void BM_IngestSmallBatches(benchmark::State& state) {
  auto rag = OpenRag("llmesh_bench_rag_ingest");
  (void)rag->CreateCollection(Config("ingest"), g_embedder);
  int next = 0;
  for (auto _ : state) {
    std::vector<DocumentInput> docs;
    for (int i = 0; i < 16; ++i) docs.push_back({absl::StrCat("d", next), DocText(next), DocFormat::kPlain, "", {}}), ++next;
    auto r = rag->Upsert("ingest", docs, g_embedder, g_counter);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
  }
  state.counters["docs_per_s"] = benchmark::Counter(static_cast<double>(next), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_IngestSmallBatches)->Iterations(200)->Unit(benchmark::kMillisecond)->UseRealTime();

std::unique_ptr<Rag>& Big() {
  static std::unique_ptr<Rag> rag;
  return rag;
}

void BM_Build100k(benchmark::State& state) {
  for (auto _ : state) {
    Big() = OpenRag("llmesh_bench_rag_100k");
    (void)Big()->CreateCollection(Config("big"), g_embedder);
    for (int begin = 0; begin < kChunks; begin += 1000) {
      std::vector<DocumentInput> docs;
      for (int i = begin; i < begin + 1000; ++i)
        docs.push_back({absl::StrCat("d", i), DocText(i), DocFormat::kPlain, "", {{"shard", absl::StrCat(i % 10)}}});
      auto r = Big()->Upsert("big", docs, g_embedder, g_counter);
      if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    }
  }
  state.counters["docs_per_s"] = benchmark::Counter(kChunks, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Build100k)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

void BM_Query(benchmark::State& state) {
  auto mode = static_cast<RetrievalMode>(state.range(0));
  if (!Big()) return state.SkipWithError("BM_Build100k did not run");
  std::mt19937 rng(7);
  std::vector<double> ms;
  for (auto _ : state) {
    QueryOptions o{absl::StrCat(Word(rng()), " ", Word(rng()), " ", Word(rng())), 10, mode, {}};
    absl::Time t0 = absl::Now();
    auto r = Big()->Query("big", o, g_embedder);
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
  }
  std::sort(ms.begin(), ms.end());
  state.counters["p50_ms"] = ms[ms.size() / 2];
  state.counters["p99_ms"] = ms[ms.size() * 99 / 100];
}
BENCHMARK(BM_Query)
    ->Arg(static_cast<int>(RetrievalMode::kDense))
    ->Arg(static_cast<int>(RetrievalMode::kLexical))
    ->Arg(static_cast<int>(RetrievalMode::kHybrid))
    ->ArgNames({"mode(0=dense,1=lexical,2=hybrid)"})
    ->Iterations(1000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_DenseRecallAt10(benchmark::State& state) {
  if (!Big()) return state.SkipWithError("BM_Build100k did not run");
  std::vector<std::vector<float>> base;
  base.reserve(kChunks);
  for (int i = 0; i < kChunks; ++i) base.push_back(RandomEmbedder::Vector(DocText(i)));
  double found = 0, total = 0;
  for (auto _ : state) {
    for (int q = 0; q < 100; ++q) {
      std::string text = absl::StrCat("query ", q);
      std::vector<float> qv = RandomEmbedder::Vector(text);
      std::vector<std::pair<float, int>> exact;
      for (int i = 0; i < kChunks; ++i) {
        float dot = 0;
        for (int d = 0; d < kDim; ++d) dot += base[i][d] * qv[d];
        exact.emplace_back(-dot, i);
      }
      std::partial_sort(exact.begin(), exact.begin() + 10, exact.end());
      QueryOptions o{text, 10, RetrievalMode::kDense, {}};
      auto r = Big()->Query("big", o, g_embedder);
      if (!r.ok()) return state.SkipWithError(std::string(r.status().message()).c_str());
      for (int k = 0; k < 10; ++k)
        for (const auto& h : *r) found += h.document_id == absl::StrCat("d", exact[k].second);
      total += 10;
    }
  }
  state.counters["recall_at_10"] = found / total;
}
BENCHMARK(BM_DenseRecallAt10)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace llmesh::rag

BENCHMARK_MAIN();
