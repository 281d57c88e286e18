// Probes of a running stack for integration tests: how many workers the
// gateway routes to, an engine's own stats, which processes a process left.
#pragma once

#include <dirent.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::testing {

// Workers the gateway routes stories260K to; -1 when it does not answer.
inline int GatewayWorkers(v1::Gateway::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GatewayListModelsResponse resp;
  if (!stub.ListModels(&ctx, v1::GatewayListModelsRequest(), &resp).ok()) return -1;
  for (const auto& m : resp.models())
    if (m.name() == "stories260K") return m.workers();
  return 0;
}

inline bool WaitForGatewayWorkers(v1::Gateway::Stub& stub, int n, absl::Duration timeout = absl::Seconds(30)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (GatewayWorkers(stub) == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The engine's GetStats; requests_total -1 when it does not answer.
inline v1::EngineStats EngineStatsNow(const std::string& engine) {
  auto stub = v1::EngineService::NewStub(rpc::CreateChannel(engine));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::EngineStats s;
  if (!stub->GetStats(&ctx, v1::GetStatsRequest(), &s).ok()) s.set_requests_total(-1);
  return s;
}

// Processes whose parent is `parent` (from /proc/*/stat), zombies included.
inline std::vector<int> ChildrenOf(int parent) {
  std::vector<int> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream in(stat.substr(close + 1));
    std::string state;
    int ppid = 0;
    if (in >> state >> ppid && ppid == parent) out.push_back(pid);
  }
  closedir(d);
  return out;
}

inline bool Alive(int pid) { return kill(pid, 0) == 0; }

}  // namespace llmesh::testing
