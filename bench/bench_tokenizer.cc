// Tokenizer throughput: encode a multi-megabyte mix of English prose, source
// code and CJK text with each reference vocabulary (SPM, BPE, WordPiece);
// decode and stream the ids back. Reports MB/s (bytes_per_second) and tokens/s.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "llmesh/tokenizer/detokenizer.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace {

using llmesh::tokenizer::Tokenizer;

std::string SharedDir() {
  if (const char* env = std::getenv("LLMESH_SHARED_DIR")) return env;
  return LLMESH_SHARED_DIR;
}

// Deterministic corpus: paragraphs drawn by a fixed LCG from a varied pool,
// with numbers and identifiers perturbed so the text does not just repeat.
const std::string& Corpus() {
  static const std::string text = [] {
    const char* pool[] = {
        "The committee met on Tuesday to review the quarterly figures. Revenue rose %d%% year over year, "
        "while costs, driven mostly by hiring, grew faster than anyone had expected. \"We can't keep "
        "this pace,\" said the CFO; others weren't so sure. ",
        "Once upon a time, in a village by the sea, there lived a girl named Lily who loved to collect "
        "shells. Every morning she'd walk %d steps along the shore, humming a song her grandmother taught her.\n\n",
        "static int parse_header_%d(const uint8_t *buf, size_t len, struct header *out) {\n"
        "    if (len < sizeof(*out)) return -EINVAL;\n    memcpy(out, buf, sizeof(*out));\n"
        "    for (int i = 0; i < out->n_fields; ++i) { out->sum += buf[i] ^ 0x5a; }\n    return 0;\n}\n\n",
        "def train_step_%d(model, batch, optimizer):\n    logits = model(batch[\"input_ids\"])\n"
        "    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), batch[\"labels\"].view(-1))\n"
        "    loss.backward()\n    optimizer.step()\n    return {\"loss\": loss.item()}\n\n",
        "机器学习是人工智能的一个分支，它使计算机能够从数据中学习，而无需进行明确的编程。第%d章介绍了监督学习和无监督学习的基本概念。\n",
        "東京の天気は晴れ、最高気温は%d度の予想です。週末は雨が降るでしょう。\n",
        "한국어 텍스트도 포함되어 있습니다: 오늘은 %d번째 실험입니다.\n",
        "Ärger über Straßenbahnen, naïve café owners and the résumé of a Führer of tours: %d items. "
        "Voilà — c'est très bien!\n",
        "{\"id\": %d, \"name\": \"widget\", \"tags\": [\"a\", \"b\"], \"price\": 12.50, \"ok\": true}\n",
        "    <div class=\"row\"><span id=\"n%d\">&nbsp;Total:</span> <b>42</b></div>\n",
    };
    constexpr size_t kPool = sizeof(pool) / sizeof(pool[0]);
    std::string out;
    out.reserve(4u << 20);
    uint64_t state = 0x9E3779B97F4A7C15ull;
    char buf[1024];
    while (out.size() < (4u << 20)) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const size_t pick = (state >> 33) % kPool;
      std::snprintf(buf, sizeof buf, pool[pick], static_cast<int>((state >> 17) % 100000));
      out += buf;
    }
    return out;
  }();
  return text;
}

const Tokenizer& Tok(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    auto t = Tokenizer::Load(SharedDir() + "/tokenizer-vectors/ggml-vocab-" + name + ".gguf");
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", std::string(t.status().message()).c_str());
      std::abort();
    }
    slot = std::move(*t);
  }
  return *slot;
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const Tokenizer& tok = Tok(name);
  const std::string& text = Corpus();
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok.Encode(text, true, false);
    if (!ids.ok()) state.SkipWithError("encode failed");
    n_tokens = ids->size();
    benchmark::DoNotOptimize(ids->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n_tokens * state.iterations()),
                                                  benchmark::Counter::kIsRate);
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(n_tokens);
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const Tokenizer& tok = Tok(name);
  const auto ids = *tok.Encode(Corpus(), true, false);
  size_t bytes = 0;
  for (auto _ : state) {
    auto text = tok.Decode(ids);
    bytes = text->size();
    benchmark::DoNotOptimize(text->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(ids.size() * state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

void BM_Stream(benchmark::State& state, const std::string& name) {
  const Tokenizer& tok = Tok(name);
  const auto ids = *tok.Encode(Corpus(), true, false);
  for (auto _ : state) {
    llmesh::tokenizer::StreamingDetokenizer stream(tok);
    size_t n = 0;
    for (int32_t id : ids) n += stream.Push(id)->size();
    n += stream.Flush().size();
    benchmark::DoNotOptimize(n);
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(ids.size() * state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(BM_Encode, spm_llama, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bpe_gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, wpm_bert, std::string("bert-bge"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, spm_llama, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, bpe_gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Stream, spm_llama, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Stream, bpe_gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
