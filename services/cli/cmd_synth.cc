// `llmesh synth`: a deterministic random-weight model of a real shape, a
// decoder (llama, qwen2) or a BERT encoder (bert, optionally the
// bag-of-words embedder recipe).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli_progress.h"
#include "commands.h"
#include "llmesh/engine/bert_synth.h"
#include "llmesh/engine/model_synth.h"

namespace llmesh::cli {
namespace {

[[noreturn]] void Fail(const absl::Status& s) {
  std::fprintf(stderr, "\nerror: %s\n", std::string(s.ToString()).c_str());
  throw CLI::RuntimeError(1);
}

bool IsBertShape(const std::string& name) {
  for (const std::string& s : engine::BertSynthShapeNames()) {
    if (s == name) return true;
  }
  return false;
}

}  // namespace

void RegisterSynthCommands(CLI::App& app) {
  struct Args {
    std::string arch, shape, type = "Q4_0", vocab, out;
    uint64_t seed = 42;
    bool pure = false, bag_of_words = false;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "synth", "Write a random-weight model of a real shape (weights N(0, 0.02), norms 1 or about 1)");
  cmd->add_option("--arch", a->arch, "llama, qwen2 or bert (default: the shape's family)")
      ->check(CLI::IsMember({"llama", "qwen2", "bert"}));
  cmd->add_option("--shape", a->shape,
                  absl::StrCat(absl::StrJoin(engine::SynthShapeNames(), " | "), " | bert: ",
                               absl::StrJoin(engine::BertSynthShapeNames(), " | ")))
      ->required();
  cmd->add_flag("--bag-of-words", a->bag_of_words,
                "bert only: random word vectors, identity layers, mean pooling (an embedder "
                "whose similarity counts shared words)");
  cmd->add_option("--type", a->type, "Weight type or llama.cpp file type (Q4_K_M, ...; see quantize)")
      ->capture_default_str();
  cmd->add_option("--vocab-from", a->vocab, "GGUF whose tokenizer.* keys (and n_vocab) to copy")
      ->required();
  cmd->add_option("--seed", a->seed, "Weight seed")->capture_default_str();
  cmd->add_flag("--pure", a->pure, "Every matrix gets TYPE (no Q6_K output layer)");
  cmd->add_option("-t,--threads", a->threads, "Threads (0 = all cores)");
  cmd->add_option("OUT", a->out, "Destination GGUF file")->required();
  cmd->callback([a] {
    const bool bert = a->arch == "bert" || (a->arch.empty() && IsBertShape(a->shape));
    if (a->bag_of_words && !bert) Fail(absl::InvalidArgumentError("--bag-of-words needs a bert shape"));
    const auto mix = engine::QuantMix::Parse(a->type);
    if (!mix.ok()) Fail(mix.status());
    auto vocab = gguf::GgufFile::Open(a->vocab);
    if (!vocab.ok()) Fail(vocab.status());
    ProgressBar bar("synth");
    auto progress = [&bar](size_t done, size_t total) { bar.Update(done, total); };
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status written;
    if (bert) {
      auto shape = engine::BertSynthShapeByName(a->shape);
      if (!shape.ok()) Fail(shape.status());
      engine::BertSynthOptions o;
      o.shape = *shape;
      o.recipe = a->bag_of_words ? engine::BertSynthRecipe::kBagOfWords : engine::BertSynthRecipe::kRandom;
      o.type = mix->type;
      o.pure = a->pure;
      o.vocab = vocab->get();
      o.seed = a->seed;
      o.n_threads = a->threads;
      o.progress = progress;
      written = engine::SynthesizeBertModel(o, a->out);
    } else {
      auto shape = engine::SynthShapeByName(a->shape);
      if (!shape.ok()) Fail(shape.status());
      engine::SynthOptions o;
      o.shape = *shape;
      if (a->arch == "llama") o.arch = engine::Arch::kLlama;
      if (a->arch == "qwen2") o.arch = engine::Arch::kQwen2;
      o.type = mix->type;
      o.size = mix->size;
      o.pure = a->pure;
      o.vocab = vocab->get();
      o.seed = a->seed;
      o.n_threads = a->threads;
      o.progress = progress;
      written = engine::SynthesizeModel(o, a->out);
    }
    if (!written.ok()) Fail(written);
    std::fprintf(stderr, "wrote %s in %.1f s\n", a->out.c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}

}  // namespace llmesh::cli
