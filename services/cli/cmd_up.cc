// `llmesh up`: the whole stack as separate processes on this machine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "commands.h"
#include "llmesh/common/subprocess.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/health.h"
#include "llmesh/v1/gateway.grpc.pb.h"
#include "stack_config.h"

namespace llmesh::cli {
namespace fs = std::filesystem;
namespace {

// The directory holding this binary: the other service binaries sit beside it.
std::string SelfDir() {
  return fs::canonical("/proc/self/exe").parent_path().string();
}

// Port free on this host? A quick bind, so a taken port is reported before
// anything starts, naming the service that wanted it.
bool PortFree(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return true;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = host == "0.0.0.0" ? INADDR_ANY : inet_addr(host.c_str());
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::string Tail(const std::string& path, size_t max_bytes = 2000) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

struct Running {
  StackProcess spec;
  std::unique_ptr<Subprocess> proc;
  std::string log;
};

void StopAll(std::vector<Running>& running) {
  // Reverse order: the gateway stops taking requests before its backends go.
  for (auto it = running.rbegin(); it != running.rend(); ++it) it->proc->Signal(SIGTERM);
  for (auto it = running.rbegin(); it != running.rend(); ++it) {
    if (!it->proc->Wait(absl::Seconds(20)).ok()) {
      std::fprintf(stderr, "llmesh up: %s did not stop in 20s; killing it\n", it->spec.name.c_str());
      it->proc->Signal(SIGKILL);
      (void)it->proc->Wait(absl::Seconds(5));
    }
  }
}

std::string ConnectHost(const std::string& host) { return host == "0.0.0.0" ? "127.0.0.1" : host; }

int RunUp(const std::string& config_path, const std::string& model_dir, int replicas) {
  // Taken before any child exists, so Ctrl-C reaches us in sigwait, not a default handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

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
  // Wiring: engines self-register with the gateway; the gateway uses the tokenizer.
  std::string gateway_addr, tokenizer_addr;
  for (const auto& p : cfg->processes) {
    if (p.section == "gateway") gateway_addr = absl::StrCat(ConnectHost(p.host), ":", p.port);
    if (p.section == "tokenizer") tokenizer_addr = absl::StrCat(ConnectHost(p.host), ":", p.port);
  }
  fs::create_directories(cfg->run_dir);

  std::vector<Running> running;
  for (const auto& p : cfg->processes) {
    std::string log = absl::StrCat(cfg->run_dir, "/", p.name, ".log");
    std::vector<std::string> argv = {absl::StrCat(self, "/", p.binary), "--config", cfg->config_path,
                                     "--listen", p.address(), "--port-file",
                                     absl::StrCat(cfg->run_dir, "/", p.name, ".port")};
    std::string section_env = p.section;
    for (char& c : section_env) c = static_cast<char>(toupper(c));
    if (p.section == "engine") {
      argv.insert(argv.end(), {"--gateway", gateway_addr});
    } else if (p.section == "gateway") {
      argv.insert(argv.end(), {"--tokenizer", tokenizer_addr, "--http-listen",
                               absl::StrCat(cfg->gateway_http_host, ":", cfg->gateway_http_port)});
    }
    std::vector<std::string> env = {absl::StrCat("LLMESH_", section_env, "_MODEL_DIR=", cfg->model_dir)};
    auto proc = Subprocess::Start(argv, log, env);
    if (!proc.ok()) {
      std::fprintf(stderr, "llmesh up: cannot start %s: %s\n", p.name.c_str(),
                   std::string(proc.status().message()).c_str());
      StopAll(running);
      return 1;
    }
    running.push_back({p, std::move(*proc), log});
  }

  std::printf("llmesh up: starting %zu processes (logs in %s)\n", running.size(), cfg->run_dir.c_str());
  absl::Time deadline = absl::Now() + cfg->ready_timeout;
  for (auto& r : running) {
    auto channel = rpc::CreateChannel(absl::StrCat(ConnectHost(r.spec.host), ":", r.spec.port));
    absl::Status st = absl::DeadlineExceededError("not ready");
    while (absl::Now() < deadline) {
      if (!r.proc->running()) break;
      st = rpc::WaitForServing(*channel, r.spec.health_service, absl::Milliseconds(500));
      if (st.ok()) break;
    }
    if (!st.ok()) {
      std::fprintf(stderr, "llmesh up: %s did not become ready: %s\n--- last lines of %s ---\n%s\n",
                   r.spec.name.c_str(), std::string(st.message()).c_str(), r.log.c_str(), Tail(r.log).c_str());
      StopAll(running);
      return 1;
    }
    std::printf("  %-12s %-22s SERVING\n", r.spec.name.c_str(), r.spec.address().c_str());
  }
  const StackProcess& gw = running.back().spec;
  // Ready means the gateway routes: every engine has registered with it.
  {
    auto stub = v1::Gateway::NewStub(rpc::CreateChannel(absl::StrCat(ConnectHost(gw.host), ":", gw.port)));
    int workers = 0;
    while (absl::Now() < deadline) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::GatewayListModelsResponse models;
      if (stub->ListModels(&ctx, v1::GatewayListModelsRequest(), &models).ok()) {
        for (const auto& m : models.models())
          if (m.name() == cfg->model) workers = m.workers();
      }
      if (workers >= cfg->engine_replicas) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (workers < cfg->engine_replicas)
      std::fprintf(stderr, "llmesh up: the gateway sees %d of %d engine workers (see %s/gateway.log)\n", workers,
                   cfg->engine_replicas, cfg->run_dir.c_str());
  }
  std::string http = absl::StrCat(ConnectHost(cfg->gateway_http_host), ":", cfg->gateway_http_port);
  std::printf(
      "\nllmesh is up on model %s. Gateway: gRPC %s:%d, OpenAI-compatible HTTP http://%s/v1\n"
      "Try it:\n"
      "  curl -s http://%s/v1/chat/completions -H 'Content-Type: application/json' \\\n"
      "    -d '{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], "
      "\"max_tokens\": 64}'\n"
      "  %s/llmesh chat --gateway %s:%d\n"
      "Check every service's health with:\n  %s/llmesh health",
      cfg->model.c_str(), ConnectHost(gw.host).c_str(), gw.port, http.c_str(), http.c_str(), cfg->model.c_str(),
      self.c_str(), ConnectHost(gw.host).c_str(), gw.port, self.c_str());
  for (const auto& r : running) std::printf(" %s:%d", ConnectHost(r.spec.host).c_str(), r.spec.port);
  std::printf("\nPress Ctrl-C to stop.\n");
  std::fflush(stdout);

  // Wait for a signal, or for a child to die unexpectedly.
  timespec tick{0, 200 * 1000 * 1000};
  int exit_code = 0;
  while (true) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    bool died = false;
    for (auto& r : running) {
      if (!r.proc->running()) {
        std::fprintf(stderr, "llmesh up: %s exited unexpectedly\n--- last lines of %s ---\n%s\n",
                     r.spec.name.c_str(), r.log.c_str(), Tail(r.log).c_str());
        died = true;
      }
    }
    if (died) {
      exit_code = 1;
      break;
    }
  }
  std::printf("llmesh up: stopping...\n");
  StopAll(running);
  std::printf("llmesh up: stopped\n");
  return exit_code;
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
  std::string default_config = SelfDir() + "/../../deploy/llmesh.yaml";
  config = getenv("LLMESH_CONFIG") ? getenv("LLMESH_CONFIG") : default_config;
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
