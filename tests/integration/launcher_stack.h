// The local launcher (`llmesh up`) for integration tests: a stack file on
// free 127.0.0.1 ports with its run directory in the test's temp dir, the
// launcher as a child process, and `llmesh` commands run against it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service_process.h"

namespace llmesh::testing {

// A port nobody listens on right now (the kernel's pick for port 0).
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline const std::string& LlmeshBin() {
  static const std::string bin = std::string(LLMESH_BIN_DIR) + "/llmesh";
  return bin;
}

struct CommandResult {
  int code = -1;
  std::string output;  // stdout and stderr
};

// Runs `llmesh args...` to completion.
inline CommandResult RunLlmesh(const std::vector<std::string>& args, absl::Duration timeout = absl::Seconds(120)) {
  std::string log = MakeTempDir("cmd") + "/out.txt";
  std::vector<std::string> argv = {LlmeshBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r;
  auto proc = Subprocess::Start(argv, log);
  if (!proc.ok()) return r;
  auto code = (*proc)->Wait(timeout);
  r.code = code.ok() ? *code : -1;
  r.output = ReadFile(log);
  return r;
}

struct LauncherStack {
  std::string dir, config, run_dir, log;
  int tokenizer_port = 0, engine_port = 0, rag_port = 0, agent_port = 0, gateway_port = 0, http_port = 0;
  std::unique_ptr<Subprocess> up;

  // Writes the stack file: `engines` workers (consecutive ports from a free base).
  void Write(const std::string& model_dir, int engines, const std::string& extra_engine = "",
             const std::string& model = "stories260K") {
    model_dir_ = model_dir;
    engines_ = engines;
    extra_engine_ = extra_engine;
    model_ = model;
    dir = MakeTempDir("up");
    run_dir = dir + "/run";
    config = dir + "/stack.yaml";
    log = dir + "/up.log";
    tokenizer_port = FreePort();
    engine_port = FreePort();
    while (engine_port + engines > 65535) engine_port = FreePort();
    rag_port = FreePort();
    agent_port = FreePort();
    gateway_port = FreePort();
    http_port = FreePort();
    std::ofstream(config) << absl::StrCat(
        "common: {model_dir: \"", model_dir, "\", model: ", model, ", log_level: warn}\n",
        "stack: {run_dir: \"", run_dir, "\", engine_replicas: ", engines, ", ready_timeout: 90s}\n",
        "tokenizer: {listen: 127.0.0.1:", tokenizer_port, "}\n",
        "engine: {listen: 127.0.0.1:", engine_port, ", threads: 1, kv_budget_mb: 16", extra_engine, "}\n",
        "rag: {listen: 127.0.0.1:", rag_port, ", data_dir: \"", dir, "/rag\"}\n",
        "agent: {listen: 127.0.0.1:", agent_port, ", data_dir: \"", dir, "/agent\"}\n",
        "gateway: {listen: 127.0.0.1:", gateway_port,
        ", http_listen: 127.0.0.1:", http_port, ", health_interval: 300ms}\n");
  }
  std::string gateway() const { return absl::StrCat("127.0.0.1:", gateway_port); }
  std::vector<int> service_ports() const {
    return {tokenizer_port, rag_port, agent_port, gateway_port};
  }

  // Starts `llmesh up` and waits until it says it is up. The ports were free
  // when written; another test may take one meanwhile: then new ports, again.
  absl::Status Start(absl::Duration timeout = absl::Seconds(120)) {
    absl::Status st;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) Write(model_dir_, engines_, extra_engine_, model_);
      st = StartOnce(timeout);
      if (st.ok()) return st;
      std::string text(st.message());
      bool port_taken = text.find("already in use") != std::string::npos ||
                        text.find("cannot listen") != std::string::npos ||
                        text.find("address in use") != std::string::npos;
      if (!port_taken) return st;
      (void)up->Wait(absl::Seconds(60));
    }
    return st;
  }

  absl::Status StartOnce(absl::Duration timeout) {
    auto proc = Subprocess::Start({LlmeshBin(), "up", "--config", config}, log);
    if (!proc.ok()) return proc.status();
    up = std::move(*proc);
    absl::Time deadline = absl::Now() + timeout;
    while (ReadFile(log).find("Press Ctrl-C") == std::string::npos) {
      if (!up->running()) return absl::InternalError("llmesh up exited:\n" + ReadFile(log));
      if (absl::Now() > deadline) return absl::DeadlineExceededError("llmesh up is not up:\n" + ReadFile(log));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return absl::OkStatus();
  }

  // `llmesh ps`: process name → {address, pid}.
  std::map<std::string, std::pair<std::string, int>> Ps() {
    std::map<std::string, std::pair<std::string, int>> out;
    CommandResult r = RunLlmesh({"ps", "--run-dir", run_dir});
    for (absl::string_view line : absl::StrSplit(r.output, '\n')) {
      std::istringstream in{std::string(line)};
      std::string name, address, word;
      int pid = 0;
      if (in >> name >> address >> word >> pid && word == "pid") out[name] = {address, pid};
    }
    return out;
  }
  std::map<std::string, std::pair<std::string, int>> Engines() {
    auto all = Ps();
    std::map<std::string, std::pair<std::string, int>> out;
    for (const auto& [name, v] : all)
      if (name.rfind("engine-", 0) == 0) out[name] = v;
    return out;
  }

  // Ctrl-C; the launcher's exit code.
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(90)) {
    up->Signal(SIGINT);
    return up->Wait(timeout);
  }

 private:
  std::string model_dir_, extra_engine_, model_;  // Write's arguments, for a retry on other ports
  int engines_ = 2;
};

}  // namespace llmesh::testing
