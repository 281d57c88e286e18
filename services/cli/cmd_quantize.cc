// `llmesh quantize IN OUT TYPE`: convert an F32/F16/BF16 model to a llama.cpp
// file type (a tensor type, or a mix such as Q4_K_M).
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
      "quantize", "Convert an F32/F16/BF16 GGUF model to TYPE, tensor types chosen as llama-quantize does");
  cmd->add_option("IN", a->in, "Source GGUF model")->required();
  cmd->add_option("OUT", a->out, "Destination GGUF file")->required();
  cmd->add_option("TYPE", a->type,
                  "Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL "
                  "IQ4_XS TQ1_0 TQ2_0 F16 BF16 F32 (Q3_K, Q4_K, Q5_K: the _M mixes)")
      ->required();
  cmd->add_flag("--pure", a->pure, "Every matrix gets TYPE's tensor type (no Q6_K output layer, no mix)");
  cmd->add_option("-t,--threads", a->threads, "Threads (0 = all cores)");
  cmd->callback([a] {
    const auto mix = engine::QuantMix::Parse(a->type);
    if (!mix.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(mix.status().message()).c_str());
      throw CLI::RuntimeError(1);
    }
    ProgressBar bar("quantize");
    engine::QuantizeOptions o;
    o.type = mix->type;
    o.size = mix->size;
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
