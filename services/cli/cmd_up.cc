// `llmesh up`: the whole stack as separate processes on this machine, with a
// control socket in the run directory that `llmesh scale` / `restart` / `ps`
// talk to (cmd_scale.cc).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "commands.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/cluster_auth.h"
#include "llmesh/rpc/health.h"
#include "stack_config.h"
#include "stack_control.h"
#include "stack_runner.h"

namespace llmesh::cli {
namespace fs = std::filesystem;
namespace {

// The directory holding this binary: the other service binaries sit beside it.
std::string SelfDir() {
  return fs::canonical("/proc/self/exe").parent_path().string();
}

// One request on the control socket (see stack_control.h).
void Serve(ControlConnection& conn, StackRunner& runner) {
  if (auto st = conn.ReadRequest(absl::Seconds(2)); !st.ok()) return conn.Finish(st);
  std::vector<std::string> words = absl::StrSplit(conn.request(), ' ', absl::SkipWhitespace());
  auto send = [&](const std::string& line) {
    conn.Send(line);
    std::printf("llmesh up: %s\n", line.c_str());
    std::fflush(stdout);
  };
  if (words.size() == 1 && words[0] == "ps") {
    for (const auto& line : runner.Describe()) conn.Send(line);
    return conn.Finish(absl::OkStatus());
  }
  if (words.size() >= 2 && (words[0] == "scale" || words[0] == "restart") && words[1] != "engine")
    return conn.Finish(absl::InvalidArgumentError(
        absl::StrCat("only engine workers can be ", words[0] == "scale" ? "scaled" : "restarted", " (got '",
                     words[1], "')")));
  int n = 0;
  if (words.size() == 3 && words[0] == "scale" && absl::SimpleAtoi(words[2], &n)) {
    std::printf("llmesh up: scale engine %d\n", n);
    return conn.Finish(runner.ScaleEngines(n, send));
  }
  if (words.size() == 2 && words[0] == "restart") {
    std::printf("llmesh up: rolling restart of the engine workers\n");
    return conn.Finish(runner.RestartEngines(send));
  }
  conn.Finish(absl::InvalidArgumentError(
      absl::StrCat("unknown request '", conn.request(), "' (scale engine N | restart engine | ps)")));
}

// Internal RPCs need the stack's cluster credential. Unless the stack file or
// the environment names one, each run makes its own: written to
// RUN_DIR/cluster_token (owner-only) and handed to every child through
// LLMESH_CLUSTER_TOKEN_FILE, which `llmesh` commands read too.
absl::Status ProvideClusterToken(const StackConfig& cfg) {
  if (!cfg.cluster_token_in_file && std::getenv("LLMESH_CLUSTER_TOKEN") == nullptr &&
      std::getenv("LLMESH_CLUSTER_TOKEN_FILE") == nullptr) {
    std::string path = absl::StrCat(cfg.run_dir, "/cluster_token");
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::string token = rpc::GenerateClusterToken() + "\n";
    bool ok = fd >= 0 && ::write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size());
    if (fd >= 0) ::close(fd);
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0)
      return absl::InternalError(absl::StrCat("cannot write the cluster token to ", path));
    setenv("LLMESH_CLUSTER_TOKEN_FILE", path.c_str(), 1);
  }
  auto token = rpc::ClusterTokenFromEnv();
  if (!token.ok()) return token.status();
  rpc::SetClusterToken(*token);
  return absl::OkStatus();
}

int RunUp(const std::string& config_path, const std::string& model_dir, int replicas) {
  // Taken before any child exists, so Ctrl-C reaches us in sigwait, not a default handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a control client that hangs up

  std::string self = SelfDir();
  std::string default_models;
  for (const char* rel : {"/../../../shared/models", "/../../shared/models"}) {
    if (fs::is_directory(self + rel)) {
      default_models = fs::canonical(self + rel).string();
      break;
    }
  }
  auto cfg = LoadStackConfig(config_path, model_dir, replicas, default_models);
  if (!cfg.ok()) {
    std::fprintf(stderr, "llmesh up: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  std::string model_file = absl::StrCat(cfg->model_dir, "/", cfg->model, ".gguf");
  if (cfg->model_dir.empty() || !fs::is_regular_file(model_file)) {
    std::fprintf(stderr,
                 "llmesh up: model '%s' not found (looked for %s).\n"
                 "Put a GGUF file in a directory and pass --model-dir DIR (or set common.model_dir in %s).\n",
                 cfg->model.c_str(), cfg->model_dir.empty() ? "<no model directory>" : model_file.c_str(),
                 cfg->config_path.c_str());
    return 1;
  }
  for (const auto& p : cfg->processes) {
    if (!PortFree(p.host, p.port)) {
      std::fprintf(stderr, "llmesh up: port %d for %s is already in use (%s.listen in %s)\n", p.port,
                   p.name.c_str(), p.section.c_str(), cfg->config_path.c_str());
      return 1;
    }
  }
  if (!PortFree(cfg->gateway_http_host, cfg->gateway_http_port)) {
    std::fprintf(stderr, "llmesh up: port %d for gateway HTTP is already in use (gateway.http_listen in %s)\n",
                 cfg->gateway_http_port, cfg->config_path.c_str());
    return 1;
  }
  fs::create_directories(cfg->run_dir);
  if (auto st = ProvideClusterToken(*cfg); !st.ok()) {
    std::fprintf(stderr, "llmesh up: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  // The control socket first: a second launcher on this run directory stops here.
  auto control = ControlServer::Listen(cfg->run_dir);
  if (!control.ok()) {
    std::fprintf(stderr, "llmesh up: %s\n", std::string(control.status().message()).c_str());
    return 1;
  }

  StackRunner runner(*cfg, self);
  auto print = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  if (auto st = runner.StartAll(print); !st.ok()) {
    std::fprintf(stderr, "llmesh up: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  runner.SetInterrupted([&set] {
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
  });
  const StackProcess& gw = cfg->processes.back();
  std::string http = absl::StrCat(ConnectHost(cfg->gateway_http_host), ":", cfg->gateway_http_port);
  std::printf(
      "\nllmesh is up on model %s. Gateway: gRPC %s:%d, OpenAI-compatible HTTP http://%s/v1\n"
      "Try it:\n"
      "  curl -s http://%s/v1/chat/completions -H 'Content-Type: application/json' \\\n"
      "    -d '{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], "
      "\"max_tokens\": 64}'\n"
      "  %s/llmesh chat --gateway %s:%d\n"
      "Scale the engine workers while it runs:\n  %s/llmesh scale engine N --run-dir %s\n"
      "Check every service's health with:\n  %s/llmesh health",
      cfg->model.c_str(), ConnectHost(gw.host).c_str(), gw.port, http.c_str(), http.c_str(), cfg->model.c_str(),
      self.c_str(), ConnectHost(gw.host).c_str(), gw.port, self.c_str(), cfg->run_dir.c_str(), self.c_str());
  for (const auto& p : cfg->processes) std::printf(" %s:%d", ConnectHost(p.host).c_str(), p.port);
  std::printf("\nPress Ctrl-C to stop.\n");
  std::fflush(stdout);

  // Serve control requests and restart what crashes, until Ctrl-C / SIGTERM.
  timespec now{0, 0};
  auto report = [](const std::string& line) {
    std::fprintf(stderr, "llmesh up: %s\n", line.c_str());
    std::fflush(stderr);
  };
  while (true) {
    if (auto conn = (*control)->Accept(absl::Milliseconds(100))) Serve(*conn, runner);
    int sig = sigtimedwait(&set, nullptr, &now);
    if (sig == SIGINT || sig == SIGTERM) break;
    runner.Supervise(report);
  }
  std::printf("llmesh up: stopping...\n");
  std::fflush(stdout);
  control->reset();  // no more requests
  runner.StopAll();
  std::printf("llmesh up: stopped\n");
  return 0;
}

int RunHealth(const std::vector<std::string>& addresses) {
  int bad = 0;
  for (const auto& a : addresses) {
    auto st = rpc::CheckHealth(*rpc::CreateChannel(a), "", absl::Seconds(3));
    std::printf("%-22s %s\n", a.c_str(), st.ok() ? st->c_str() : std::string(st.status().message()).c_str());
    if (!st.ok() || *st != "SERVING") ++bad;
  }
  return bad == 0 ? 0 : 1;
}

}  // namespace

void RegisterUpCommands(CLI::App& app) {
  auto* up = app.add_subcommand("up", "Start the whole stack as local processes (Ctrl-C stops it)");
  static std::string config, model_dir;
  static int replicas = 0;
  config = DefaultStackConfigPath();
  up->add_option("--config", config, "Stack config file (YAML)")->capture_default_str();
  up->add_option("--model-dir", model_dir, "Directory of GGUF models (default: ../shared/models when present)");
  up->add_option("--engines", replicas, "Number of engine workers (overrides stack.engine_replicas)");
  up->callback([] { std::exit(RunUp(config, model_dir, replicas)); });

  auto* health = app.add_subcommand("health", "grpc.health.v1 status of one or more services");
  static std::vector<std::string> addresses;
  health->add_option("addresses", addresses, "host:port ...")->required();
  health->callback([] { std::exit(RunHealth(addresses)); });
}

}  // namespace llmesh::cli
