// `llmesh quantize IN OUT TYPE`: convert an F32/F16/BF16 model to another type.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "cli_progress.h"
#include "commands.h"
#include "llmesh/engine/model_quantize.h"

namespace llmesh::cli {

void RegisterQuantizeCommands(CLI::App& app) {
  struct Args {
    std::string in, out, type;
    bool pure = false;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "quantize", "Convert an F32/F16/BF16 GGUF model to TYPE (norms stay F32, like llama.cpp)");
  cmd->add_option("IN", a->in, "Source GGUF model")->required();
  cmd->add_option("OUT", a->out, "Destination GGUF file")->required();
  cmd->add_option("TYPE", a->type, "Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K TQ1_0 TQ2_0 F16 BF16 F32")
      ->required();
  cmd->add_flag("--pure", a->pure, "Every matrix gets TYPE (no Q6_K output layer)");
  cmd->add_option("-t,--threads", a->threads, "Threads (0 = all cores)");
  cmd->callback([a] {
    const auto type = gguf::ggml_type_from_name(a->type);
    if (!type) {
      std::fprintf(stderr, "error: unknown type '%s'\n", a->type.c_str());
      throw CLI::RuntimeError(1);
    }
    ProgressBar bar("quantize");
    engine::QuantizeOptions o;
    o.type = *type;
    o.pure = a->pure;
    o.n_threads = a->threads;
    o.progress = [&bar](size_t done, size_t total) { bar.Update(done, total); };
    const auto t0 = std::chrono::steady_clock::now();
    if (absl::Status s = engine::QuantizeModel(a->in, a->out, o); !s.ok()) {
      std::fprintf(stderr, "\nerror: %s\n", std::string(s.ToString()).c_str());
      throw CLI::RuntimeError(1);
    }
    std::fprintf(stderr, "wrote %s in %.1f s\n", a->out.c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}

}  // namespace llmesh::cli
