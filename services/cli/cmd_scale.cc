// `llmesh scale engine N`, `llmesh restart engine`, `llmesh ps`: requests to
// a running `llmesh up` over its control socket (stack_control.h), found by
// its run directory (--run-dir, or stack.run_dir of --config's stack file).
// The launcher does the work and streams what changed; these print it.
#include <cstdio>
#include <filesystem>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "commands.h"
#include "stack_config.h"
#include "stack_control.h"
#include "stack_runner.h"

namespace llmesh::cli {
namespace {

struct Target {
  std::string config;
  std::string run_dir;
};

void AddTargetOptions(CLI::App* cmd, Target* t) {
  cmd->add_option("--run-dir", t->run_dir, "Run directory of the running stack (default: stack.run_dir of --config)");
  cmd->add_option("--config", t->config, "Stack config file the stack was started with")->capture_default_str();
}

absl::StatusOr<std::string> RunDirOf(const Target& t) {
  if (!t.run_dir.empty()) return std::filesystem::absolute(t.run_dir).lexically_normal().string();
  auto cfg = LoadStackConfig(t.config, "", 0, "");
  if (!cfg.ok()) return cfg.status();
  return cfg->run_dir;
}

// Sends `request`, prints the launcher's lines; the process exit code.
int Request(const char* command, const Target& t, const std::string& request) {
  auto run_dir = RunDirOf(t);
  if (!run_dir.ok()) {
    std::fprintf(stderr, "llmesh %s: %s\n", command, std::string(run_dir.status().message()).c_str());
    return 2;
  }
  absl::Status st = SendControl(*run_dir, request, [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  });
  if (!st.ok()) {
    std::fprintf(stderr, "llmesh %s: %s\n", command, std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}

bool IsEngine(const char* command, const std::string& service) {
  if (service == "engine") return true;
  std::fprintf(stderr, "llmesh %s: only engine workers can be %s (got '%s'); try `llmesh %s engine ...`\n", command,
               std::string(command) == "scale" ? "scaled" : "restarted", service.c_str(), command);
  return false;
}

}  // namespace

void RegisterScaleCommands(CLI::App& app) {
  static Target scale_target, restart_target, ps_target;
  static std::string scale_service, scale_n, restart_service;
  for (Target* t : {&scale_target, &restart_target, &ps_target}) t->config = DefaultStackConfigPath();

  auto* scale = app.add_subcommand(
      "scale", "Add or remove engine workers of a running `llmesh up` (new ones register with the gateway; "
               "removed ones deregister and drain first)");
  scale->add_option("service", scale_service, "engine")->required();
  scale->add_option("n", scale_n, absl::StrCat("Engine workers wanted (1..", kMaxEngines, ")"))->required();
  AddTargetOptions(scale, &scale_target);
  scale->callback([] {
    if (!IsEngine("scale", scale_service)) std::exit(2);
    int n = 0;
    if (!absl::SimpleAtoi(scale_n, &n) || n < 1 || n > kMaxEngines) {
      std::fprintf(stderr, "llmesh scale: N must be a whole number in 1..%d (got '%s')\n", kMaxEngines,
                   scale_n.c_str());
      std::exit(2);
    }
    std::exit(Request("scale", scale_target, absl::StrCat("scale engine ", n)));
  });

  auto* restart = app.add_subcommand(
      "restart", "Rolling restart of the engine workers of a running `llmesh up`, one at a time: each "
                 "deregisters, drains and starts again on its port while the others serve (a lone one gets a "
                 "stand-in meanwhile)");
  restart->add_option("service", restart_service, "engine")->required();
  AddTargetOptions(restart, &restart_target);
  restart->callback([] {
    if (!IsEngine("restart", restart_service)) std::exit(2);
    std::exit(Request("restart", restart_target, "restart engine"));
  });

  auto* ps = app.add_subcommand("ps", "The processes of a running `llmesh up`: name, address, pid");
  AddTargetOptions(ps, &ps_target);
  ps->callback([] { std::exit(Request("ps", ps_target, "ps")); });
}

}  // namespace llmesh::cli
