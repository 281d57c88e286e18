// `llmesh`: the command-line tool. Each cmd_*.cc adds its subcommands.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "commands.h"
#include "llmesh/rpc/cluster_auth.h"

int main(int argc, char** argv) {
  CLI::App app{"llmesh: LLM inference on CPU, served over gRPC"};
  app.set_version_flag("--version", "llmesh " LLMESH_VERSION);
  app.require_subcommand(1);
  // Commands that call internal services (health, logits, ...) present the
  // stack's cluster credential, as the services themselves do.
  auto token = llmesh::rpc::ClusterTokenFromEnv();
  if (!token.ok()) {
    std::fprintf(stderr, "llmesh: %s\n", std::string(token.status().message()).c_str());
    return 2;
  }
  llmesh::rpc::SetClusterToken(*token);
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
