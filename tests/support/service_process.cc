#include "service_process.h"

#include <stdlib.h>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/cluster_auth.h"
#include "llmesh/rpc/health.h"

namespace llmesh::testing {
namespace {
// Integration tests run their stacks as deployments do, with a cluster
// credential: the services they start inherit it, their own calls carry it.
[[maybe_unused]] const bool kClusterToken = [] {
  if (getenv("LLMESH_CLUSTER_TOKEN") == nullptr && getenv("LLMESH_CLUSTER_TOKEN_FILE") == nullptr)
    setenv("LLMESH_CLUSTER_TOKEN", rpc::GenerateClusterToken().c_str(), 1);
  auto token = rpc::ClusterTokenFromEnv();
  rpc::SetClusterToken(token.ok() ? *token : "");
  return true;
}();
}  // namespace

std::string MakeTempDir(const std::string& prefix) {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(base ? base : "/tmp", "/", prefix, "-XXXXXX");
  char* dir = mkdtemp(tmpl.data());
  return dir ? std::string(dir) : std::string("/tmp");
}

absl::StatusOr<Service> StartService(const std::string& binary, const std::vector<std::string>& extra_args,
                                     absl::Duration timeout) {
  std::string dir = MakeTempDir("svc");
  std::string port_file = dir + "/port";
  std::vector<std::string> argv = {binary, "--listen", "127.0.0.1:0", "--port-file", port_file};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto proc = Subprocess::Start(argv, dir + "/log.txt");
  if (!proc.ok()) return proc.status();
  Service svc;
  svc.process = std::move(*proc);
  svc.log = dir + "/log.txt";
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::ifstream f(port_file);
    if (f >> svc.port && svc.port > 0) return svc;
    if (!svc.process->running()) {
      std::ifstream log(dir + "/log.txt");
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      return absl::InternalError(absl::StrCat(binary, " exited before listening: ", text));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(binary, " did not write its port file"));
}

absl::StatusOr<std::string> HealthStatus(const std::string& address, const std::string& service,
                                         absl::Duration timeout) {
  return rpc::CheckHealth(*rpc::CreateChannel(address), service, timeout);
}

absl::Status WaitForServing(const std::string& address, absl::Duration timeout, const std::string& service) {
  return rpc::WaitForServing(*rpc::CreateChannel(address), service, timeout);
}

}  // namespace llmesh::testing
