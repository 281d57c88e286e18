// Grammar masking cost per sampled token (µs): GrammarConstraint::Apply plus
// Accept for a JSON-schema grammar (a tool call), over the stories260K
// vocabulary (512 tokens) and llama's SentencePiece vocabulary (32000).
// Tokens are drawn uniformly from what the mask allows, so strings wander
// through odd characters; each sequence starts from a fresh constraint (as
// each request does: its memo tables start empty) and ends at EOG or after
// 128 tokens.
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "llmesh/engine/grammar.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace {

using llmesh::engine::Grammar;
using llmesh::engine::GrammarConstraint;
using llmesh::engine::TokenPieces;

constexpr const char* kToolSchema = R"({"type": "object", "properties": {
  "name": {"enum": ["get_weather", "search", "send_email"]},
  "arguments": {"type": "object", "properties": {
      "city": {"type": "string", "maxLength": 24},
      "days": {"type": "integer", "minimum": 1, "maximum": 14},
      "units": {"enum": ["metric", "imperial"]}},
    "required": ["city"], "additionalProperties": false}},
  "required": ["name", "arguments"], "additionalProperties": false})";

std::shared_ptr<const TokenPieces> LoadPieces(const std::string& path) {
  auto tok = llmesh::tokenizer::Tokenizer::Load(path);
  if (!tok.ok()) return nullptr;
  return TokenPieces::FromTokenizer(**tok, (*tok)->n_vocab());
}

void BM_JsonSchemaMask(benchmark::State& state, const std::string& path) {
  auto pieces = LoadPieces(path);
  auto text = llmesh::engine::JsonSchemaToGrammar(kToolSchema);
  if (pieces == nullptr || !text.ok()) {
    state.SkipWithError("cannot load vocabulary or compile schema");
    return;
  }
  auto grammar = Grammar::Parse(*text);
  if (!grammar.ok()) {
    state.SkipWithError("grammar does not parse");
    return;
  }
  std::mt19937 rng(1);
  std::vector<float> logits(pieces->n_vocab(), 0.0f);
  std::vector<int32_t> allowed;
  auto c = std::make_unique<GrammarConstraint>(*grammar, pieces);
  int n_in_seq = 0;
  int64_t n_sequences = 0;
  // Manual time: only Apply and Accept count, not picking the token.
  for (auto _ : state) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    const auto t0 = std::chrono::steady_clock::now();
    c->Apply(logits);
    const auto t1 = std::chrono::steady_clock::now();
    allowed.clear();
    for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
      if (logits[i] == 0.0f) allowed.push_back(i);
    }
    const int32_t tok = allowed.empty() ? 0 : allowed[rng() % allowed.size()];
    const auto t2 = std::chrono::steady_clock::now();
    c->Accept(tok);
    const auto t3 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>((t1 - t0) + (t3 - t2)).count());
    if (allowed.empty() || pieces->is_eog(tok) || ++n_in_seq == 128) {
      c = std::make_unique<GrammarConstraint>(*grammar, pieces);
      n_in_seq = 0;
      ++n_sequences;
    }
  }
  state.counters["n_vocab"] = pieces->n_vocab();
  state.counters["sequences"] = static_cast<double>(n_sequences);
  state.counters["trie_nodes"] = static_cast<double>(pieces->trie().child_begin.size() - 1);
}

const std::string kShared = LLMESH_SHARED_DIR;
BENCHMARK_CAPTURE(BM_JsonSchemaMask, stories260K_512, kShared + "/models/stories260K.gguf")
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_JsonSchemaMask, llama_spm_32000, kShared + "/tokenizer-vectors/ggml-vocab-llama-spm.gguf")
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
