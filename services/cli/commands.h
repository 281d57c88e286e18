// Each cmd_*.cc registers its subcommands on the root `llmesh` app; main.cc
// calls every Register function. Add one declaration per file here.
#pragma once

namespace CLI {
class App;
}

namespace llmesh::cli {

// cmd_model.cc: info, generate, logits
void RegisterModelCommands(CLI::App& app);
// cmd_quantize.cc: quantize
void RegisterQuantizeCommands(CLI::App& app);
// cmd_synth.cc: synth
void RegisterSynthCommands(CLI::App& app);
// cmd_bench.cc: bench
void RegisterBenchCommands(CLI::App& app);

// cmd_tokenize.cc: tokenize, detokenize
void RegisterTokenizeCommands(CLI::App& app);
// cmd_up.cc: up, health
void RegisterUpCommands(CLI::App& app);
// cmd_scale.cc: scale, restart, ps (requests to a running `llmesh up`)
void RegisterScaleCommands(CLI::App& app);
// cmd_chat.cc: chat
void RegisterChatCommands(CLI::App& app);

}  // namespace llmesh::cli
