#include "stack_runner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/health.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::cli {
namespace {

std::string Tail(const std::string& path, size_t max_bytes = 2000) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

std::string Pid(const Subprocess& p) { return std::to_string(p.pid()); }

}  // namespace

bool PortFree(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return true;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = host == "0.0.0.0" ? INADDR_ANY : inet_addr(host.c_str());
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::string ConnectHost(const std::string& host) { return host == "0.0.0.0" ? "127.0.0.1" : host; }

StackRunner::StackRunner(StackConfig config, std::string bin_dir)
    : config_(std::move(config)), bin_dir_(std::move(bin_dir)) {
  for (const auto& p : config_.processes) {
    if (p.section == "gateway") gateway_addr_ = absl::StrCat(ConnectHost(p.host), ":", p.port);
    if (p.section == "tokenizer") tokenizer_addr_ = absl::StrCat(ConnectHost(p.host), ":", p.port);
    if (p.section == "rag") rag_addr_ = absl::StrCat(ConnectHost(p.host), ":", p.port);
    if (p.section == "agent") agent_addr_ = absl::StrCat(ConnectHost(p.host), ":", p.port);
  }
}

StackRunner::~StackRunner() { StopAll(); }

std::string StackRunner::gateway_address() const { return gateway_addr_; }

int StackRunner::engines() const {
  return static_cast<int>(std::count_if(procs_.begin(), procs_.end(),
                                        [](const Running& r) { return r.spec.section == "engine"; }));
}

std::string StackRunner::PortFile(const StackProcess& p) const {
  return absl::StrCat(config_.run_dir, "/", p.name, ".port");
}

absl::Status StackRunner::Start(const StackProcess& p) {
  std::string log = absl::StrCat(config_.run_dir, "/", p.name, ".log");
  auto proc = Spawn(p, log);
  if (!proc.ok()) return proc.status();
  Running r;
  r.spec = p;
  r.proc = *std::move(proc);
  r.log = std::move(log);
  procs_.push_back(std::move(r));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Subprocess>> StackRunner::Spawn(const StackProcess& p, const std::string& log) {
  std::remove(PortFile(p).c_str());  // a previous run's: WaitServing waits for the new one
  std::vector<std::string> argv = {absl::StrCat(bin_dir_, "/", p.binary), "--config", config_.config_path,
                                   "--listen", p.address(), "--port-file", PortFile(p)};
  // Wiring: engines self-register with the gateway; the gateway uses the
  // tokenizer, rag and agent services; rag embeds on the gateway's engines.
  if (p.section == "engine") {
    argv.insert(argv.end(), {"--gateway", gateway_addr_});
    // Each engine defaults to one compute thread per core; several of them
    // on one machine would then spin against each other's threads. Unless
    // the stack file or environment says otherwise, split the cores.
    if (config_.engine_threads == 0 && std::getenv("LLMESH_ENGINE_THREADS") == nullptr) {
      const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      argv.insert(argv.end(), {"--threads", std::to_string(std::max(1, cores / config_.engine_replicas))});
    }
  } else if (p.section == "gateway") {
    argv.insert(argv.end(), {"--tokenizer", tokenizer_addr_, "--http-listen",
                             absl::StrCat(config_.gateway_http_host, ":", config_.gateway_http_port)});
    if (!rag_addr_.empty()) argv.insert(argv.end(), {"--rag", rag_addr_});
    if (!agent_addr_.empty()) argv.insert(argv.end(), {"--agent", agent_addr_});
  } else if (p.section == "rag") {
    // Embeddings over every engine the gateway routes to, following scale.
    argv.insert(argv.end(), {"--gateway", gateway_addr_});
    if (std::getenv("LLMESH_RAG_DATA_DIR") == nullptr) argv.insert(argv.end(), {"--data-dir", config_.rag_data_dir});
  } else if (p.section == "agent") {
    // Generations through the gateway, which routes across however many
    // engines run (llmesh scale); rag_search through rag-svc.
    argv.insert(argv.end(), {"--gateway", gateway_addr_});
    if (!rag_addr_.empty()) argv.insert(argv.end(), {"--rag", rag_addr_});
    if (std::getenv("LLMESH_AGENT_DATA_DIR") == nullptr)
      argv.insert(argv.end(), {"--data-dir", config_.agent_data_dir});
  }
  std::string section_env = p.section;
  for (char& c : section_env) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::vector<std::string> env = {absl::StrCat("LLMESH_", section_env, "_MODEL_DIR=", config_.model_dir)};
  if (p.section == "agent" && !config_.api_key.empty())
    env.push_back(absl::StrCat("LLMESH_AGENT_GATEWAY_API_KEY=", config_.api_key));
  auto proc = Subprocess::Start(argv, log, env);
  if (!proc.ok())
    return absl::Status(proc.status().code(),
                        absl::StrCat("cannot start ", p.name, ": ", proc.status().message()));
  return proc;
}

absl::Status StackRunner::WaitServing(Running& r, absl::Time deadline) {
  absl::Status st = absl::DeadlineExceededError("not listening");
  // Listening first (it writes its port file then): a health check before
  // that would leave the channel in reconnect backoff.
  while (!std::filesystem::exists(PortFile(r.spec)) && absl::Now() < deadline && r.proc->running())
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto channel = rpc::CreateChannel(absl::StrCat(ConnectHost(r.spec.host), ":", r.spec.port));
  while (absl::Now() < deadline) {
    if (!r.proc->running()) {
      st = absl::UnavailableError("it exited");
      break;
    }
    st = rpc::WaitForServing(*channel, r.spec.health_service, absl::Milliseconds(500));
    if (st.ok()) return st;
  }
  return absl::UnavailableError(absl::StrCat(r.spec.name, " did not become ready: ", st.message(),
                                             "\n--- last lines of ", r.log, " ---\n", Tail(r.log)));
}

int StackRunner::GatewayWorkers() {
  auto stub = v1::Gateway::NewStub(rpc::CreateChannel(gateway_addr_));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (!config_.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + config_.api_key);
  v1::GatewayListModelsResponse models;
  if (!stub->ListModels(&ctx, v1::GatewayListModelsRequest(), &models).ok()) return -1;
  for (const auto& m : models.models())
    if (m.name() == config_.model) return m.workers();
  return 0;
}

absl::Status StackRunner::WaitGatewayWorkers(int n, absl::Time deadline) {
  int workers = GatewayWorkers();
  while (workers < n && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    workers = GatewayWorkers();
  }
  if (workers >= n) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat("the gateway routes to ", std::max(workers, 0), " of ", n,
                                                  " engine workers (see ", config_.run_dir, "/gateway.log)"));
}

absl::Status StackRunner::StartAll(const Progress& progress) {
  for (const auto& p : config_.processes) {
    if (auto st = Start(p); !st.ok()) {
      StopAll();
      return st;
    }
  }
  progress(absl::StrCat("llmesh up: starting ", procs_.size(), " processes (logs in ", config_.run_dir, ")"));
  absl::Time deadline = absl::Now() + config_.ready_timeout;
  for (auto& r : procs_) {
    if (auto st = WaitServing(r, deadline); !st.ok()) {
      StopAll();
      return st;
    }
    char line[128];
    std::snprintf(line, sizeof(line), "  %-12s %-22s SERVING", r.spec.name.c_str(), r.spec.address().c_str());
    progress(line);
  }
  // Ready means the gateway routes: every engine has registered with it.
  if (auto st = WaitGatewayWorkers(engines(), deadline); !st.ok())
    progress(absl::StrCat("llmesh up: warning: ", st.message()));
  return absl::OkStatus();
}

absl::StatusOr<StackProcess> StackRunner::NextEngine() const {
  std::set<std::string> names;
  std::set<int> ports = {config_.gateway_http_port};
  for (const auto& p : config_.processes)  // the other services' ports, started or not
    if (p.section != "engine") ports.insert(p.port);
  for (const auto& r : procs_) {
    names.insert(r.spec.name);
    ports.insert(r.spec.port);
  }
  StackProcess p;
  p.section = "engine";
  p.binary = "llmesh-engine";
  p.health_service = "llmesh.v1.EngineService";
  p.host = config_.engine_host;
  for (int i = 1;; ++i) {
    p.name = absl::StrCat("engine-", i);
    if (!names.count(p.name)) break;
  }
  // engine.listen's port upward: the first one no stack process uses and nothing listens on.
  for (int port = config_.engine_base_port; port < config_.engine_base_port + 256 && port <= 65535; ++port) {
    if (ports.count(port) || !PortFree(p.host, port)) continue;
    p.port = port;
    return p;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("no free port for a new engine from ", config_.engine_base_port, " upward"));
}

absl::Status StackRunner::StartEngine(const StackProcess& p, const Progress& progress) {
  if (auto st = Start(p); !st.ok()) return st;
  Running& r = procs_.back();
  progress(absl::StrCat("starting ", r.spec.name, " on ", r.spec.address(), " (pid ", Pid(*r.proc), ")"));
  absl::Time deadline = absl::Now() + config_.ready_timeout;
  if (auto st = WaitServing(r, deadline); !st.ok()) {
    StopEngine(procs_.size() - 1, [](const std::string&) {});
    return st;
  }
  // It registers with the gateway once its model is loaded.
  int want = engines();
  if (auto st = WaitGatewayWorkers(want, deadline); !st.ok()) {
    progress(absl::StrCat("warning: ", p.name, " is SERVING but ", st.message()));
    return absl::OkStatus();
  }
  progress(absl::StrCat("started ", p.name, " on ", p.address(), " (pid ", Pid(*procs_.back().proc),
                        "): SERVING; the gateway routes to ", want, " engine workers"));
  return absl::OkStatus();
}

absl::Status StackRunner::AddEngine(const Progress& progress) {
  auto p = NextEngine();
  if (!p.ok()) return p.status();
  return StartEngine(*p, progress);
}

size_t StackRunner::Find(const std::string& name) const {
  for (size_t i = 0; i < procs_.size(); ++i)
    if (procs_[i].spec.name == name) return i;
  return procs_.size();
}

void StackRunner::StopEngine(size_t index, const Progress& progress) {
  Running r = std::move(procs_[index]);
  procs_.erase(procs_.begin() + static_cast<ptrdiff_t>(index));
  if (!r.proc) {
    progress(absl::StrCat("removed ", r.spec.name, " (it was waiting to be restarted)"));
    return;
  }
  progress(absl::StrCat("stopping ", r.spec.name, " on ", r.spec.address(), " (pid ", Pid(*r.proc),
                        "): it deregisters from the gateway, then drains its streams"));
  r.proc->Signal(SIGTERM);
  absl::Duration grace = config_.shutdown_grace + absl::Seconds(10);
  auto code = r.proc->Wait(grace);
  if (!code.ok()) {
    progress(absl::StrCat(r.spec.name, " did not stop in ", absl::FormatDuration(grace), "; killing it"));
    r.proc->Signal(SIGKILL);
    code = r.proc->Wait(absl::Seconds(5));
  }
  progress(absl::StrCat("stopped ", r.spec.name, code.ok() ? absl::StrCat(" (exit ", *code, ")") : ""));
}

absl::Status StackRunner::ScaleEngines(int n, const Progress& progress) {
  if (n < 1 || n > kMaxEngines)
    return absl::InvalidArgumentError(absl::StrCat("the number of engine workers must be in 1..", kMaxEngines,
                                                   " (got ", n, ")"));
  int before = engines();
  if (n == before) {
    progress(absl::StrCat("engine workers: ", before, " already; nothing changed"));
    return absl::OkStatus();
  }
  while (engines() < n) {
    if (Interrupted()) return absl::CancelledError("interrupted: the stack is stopping");
    if (auto st = AddEngine(progress); !st.ok()) {
      progress(absl::StrCat("engine workers: ", before, " -> ", engines()));
      return st;
    }
  }
  while (engines() > n) {
    // The most recently started engine goes first.
    for (size_t i = procs_.size(); i-- > 0;) {
      if (procs_[i].spec.section != "engine") continue;
      StopEngine(i, progress);
      break;
    }
  }
  progress(absl::StrCat("engine workers: ", before, " -> ", engines()));
  return absl::OkStatus();
}

absl::Status StackRunner::RestartEngines(const Progress& progress) {
  std::vector<StackProcess> old;
  for (const auto& r : procs_)
    if (r.spec.section == "engine") old.push_back(r.spec);
  int restarted = 0;
  for (const StackProcess& spec : old) {
    if (Interrupted()) return absl::CancelledError("interrupted: the stack is stopping");
    size_t index = Find(spec.name);
    if (index == procs_.size()) continue;  // gone meanwhile
    // Alone, it gets a stand-in first: some worker serves the model throughout.
    std::string stand_in;
    if (engines() == 1) {
      if (auto st = AddEngine(progress); !st.ok()) return st;
      stand_in = procs_.back().spec.name;
      index = Find(spec.name);
    }
    StopEngine(index, progress);
    // Its port again; the kernel may hold it a moment after the exit.
    absl::Time port_deadline = absl::Now() + absl::Seconds(10);
    while (!PortFree(spec.host, spec.port) && absl::Now() < port_deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    StackProcess next = spec;
    if (!PortFree(spec.host, spec.port)) {
      auto other = NextEngine();
      if (!other.ok()) return other.status();
      next.port = other->port;
      progress(absl::StrCat("port ", spec.port, " is still taken; ", spec.name, " moves to ", next.port));
    }
    if (auto st = StartEngine(next, progress); !st.ok()) return st;
    ++restarted;
    if (!stand_in.empty()) {
      if (size_t i = Find(stand_in); i < procs_.size()) StopEngine(i, progress);
    }
  }
  progress(absl::StrCat("restarted ", restarted, " engine workers; ", engines(), " running"));
  return absl::OkStatus();
}

std::vector<std::string> StackRunner::Describe() const {
  std::vector<std::string> out;
  absl::Time now = absl::Now();
  for (const auto& r : procs_) {
    std::string pid = r.proc ? std::to_string(r.proc->pid()) : "-";
    std::string state =
        r.proc ? absl::StrCat("up ", absl::FormatDuration(absl::Trunc(now - r.started, absl::Seconds(1))))
               : absl::StrCat("exited; restarting in ",
                              absl::FormatDuration(absl::Ceil(std::max(r.restart_at - now, absl::ZeroDuration()),
                                                              absl::Seconds(1))));
    char line[200];
    std::snprintf(line, sizeof(line), "%-12s %-22s pid %-8s restarts %-3d %s", r.spec.name.c_str(),
                  r.spec.address().c_str(), pid.c_str(), r.restarts, state.c_str());
    out.push_back(line);
  }
  return out;
}

void StackRunner::Supervise(const Progress& progress) {
  absl::Time now = absl::Now();
  for (auto& r : procs_) {
    if (r.proc && !r.proc->running()) {
      auto code = r.proc->Wait(absl::ZeroDuration());
      if (now - r.started >= kStableUptime) r.backoff = kFirstBackoff;
      r.restart_at = now + r.backoff;
      progress(absl::StrCat(r.spec.name, " (pid ", r.proc->pid(), ") exited unexpectedly",
                            code.ok() ? absl::StrCat(" with status ", *code) : "", "; restarting it in ",
                            absl::FormatDuration(r.backoff), " (restart ", r.restarts + 1, "; log ", r.log, ")"));
      r.backoff = std::min(2 * r.backoff, kMaxBackoff);
      r.proc.reset();
    }
    if (r.proc || now < r.restart_at) continue;
    // The kernel may hold the port a moment after the exit.
    if (!PortFree(r.spec.host, r.spec.port)) {
      r.restart_at = now + absl::Milliseconds(200);
      continue;
    }
    auto proc = Spawn(r.spec, r.log);
    ++r.restarts;
    r.started = now;
    if (!proc.ok()) {
      r.restart_at = now + r.backoff;
      progress(absl::StrCat("cannot restart ", r.spec.name, ": ", proc.status().message()));
      continue;
    }
    r.proc = *std::move(proc);
    // Engines register with the gateway again once loaded; clients of the
    // others reconnect on their own.
    progress(absl::StrCat("restarted ", r.spec.name, " on ", r.spec.address(), " (pid ", r.proc->pid(), ")"));
  }
}

void StackRunner::StopAll() {
  // Reverse order: the gateway stops taking requests before its backends go.
  for (auto it = procs_.rbegin(); it != procs_.rend(); ++it)
    if (it->proc) it->proc->Signal(SIGTERM);
  absl::Duration grace = config_.shutdown_grace + absl::Seconds(10);
  for (auto it = procs_.rbegin(); it != procs_.rend(); ++it) {
    if (it->proc && !it->proc->Wait(grace).ok()) {
      std::fprintf(stderr, "llmesh up: %s did not stop in %s; killing it\n", it->spec.name.c_str(),
                   absl::FormatDuration(grace).c_str());
      it->proc->Signal(SIGKILL);
      (void)it->proc->Wait(absl::Seconds(5));
    }
  }
  procs_.clear();
}

}  // namespace llmesh::cli
