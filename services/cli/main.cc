// `llmesh`: the command-line tool. Each cmd_*.cc adds its subcommands.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"llmesh: LLM inference on CPU, served over gRPC"};
  app.require_subcommand(1);
  llmesh::cli::RegisterModelCommands(app);
  llmesh::cli::RegisterQuantizeCommands(app);
  llmesh::cli::RegisterSynthCommands(app);
  llmesh::cli::RegisterBenchCommands(app);
  llmesh::cli::RegisterTokenizeCommands(app);
  llmesh::cli::RegisterUpCommands(app);
  llmesh::cli::RegisterScaleCommands(app);
  llmesh::cli::RegisterChatCommands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
