// `llmesh synth`: a deterministic random-weight model of a real shape.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "absl/strings/str_join.h"
#include "cli_progress.h"
#include "commands.h"
#include "llmesh/engine/model_synth.h"

namespace llmesh::cli {
namespace {

[[noreturn]] void Fail(const absl::Status& s) {
  std::fprintf(stderr, "\nerror: %s\n", std::string(s.ToString()).c_str());
  throw CLI::RuntimeError(1);
}

}  // namespace

void RegisterSynthCommands(CLI::App& app) {
  struct Args {
    std::string arch, shape, type = "Q4_0", vocab, out;
    uint64_t seed = 42;
    bool pure = false;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "synth", "Write a random-weight model of a real shape (norms 1, weights N(0, 0.02))");
  cmd->add_option("--arch", a->arch, "llama or qwen2 (default: the shape's)")
      ->check(CLI::IsMember({"llama", "qwen2"}));
  cmd->add_option("--shape", a->shape, absl::StrJoin(engine::SynthShapeNames(), " | "))->required();
  cmd->add_option("--type", a->type, "Weight type")->capture_default_str();
  cmd->add_option("--vocab-from", a->vocab, "GGUF whose tokenizer.* keys (and n_vocab) to copy")
      ->required();
  cmd->add_option("--seed", a->seed, "Weight seed")->capture_default_str();
  cmd->add_flag("--pure", a->pure, "Every matrix gets TYPE (no Q6_K output layer)");
  cmd->add_option("-t,--threads", a->threads, "Threads (0 = all cores)");
  cmd->add_option("OUT", a->out, "Destination GGUF file")->required();
  cmd->callback([a] {
    auto shape = engine::SynthShapeByName(a->shape);
    if (!shape.ok()) Fail(shape.status());
    const auto type = gguf::ggml_type_from_name(a->type);
    if (!type) Fail(absl::InvalidArgumentError("unknown type '" + a->type + "'"));
    auto vocab = gguf::GgufFile::Open(a->vocab);
    if (!vocab.ok()) Fail(vocab.status());
    ProgressBar bar("synth");
    engine::SynthOptions o;
    o.shape = *shape;
    if (a->arch == "llama") o.arch = engine::Arch::kLlama;
    if (a->arch == "qwen2") o.arch = engine::Arch::kQwen2;
    o.type = *type;
    o.pure = a->pure;
    o.vocab = vocab->get();
    o.seed = a->seed;
    o.n_threads = a->threads;
    o.progress = [&bar](size_t done, size_t total) { bar.Update(done, total); };
    const auto t0 = std::chrono::steady_clock::now();
    if (absl::Status s = engine::SynthesizeModel(o, a->out); !s.ok()) Fail(s);
    std::fprintf(stderr, "wrote %s in %.1f s\n", a->out.c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}

}  // namespace llmesh::cli
