// Server bootstrap shared by every llmesh service: listen address, message
// size limits, keepalive, grpc.health.v1, server reflection, and a graceful
// shutdown on SIGTERM/SIGINT that drains in-flight RPCs up to a deadline.
//
//   llmesh::rpc::ServerRunner runner(options);
//   runner.AddService(&my_service, EngineService::service_full_name());
//   if (auto st = runner.Start(); !st.ok()) ...
//   runner.SetServing(true);
//   runner.WaitForShutdownSignal();   // returns after the drain
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "llmesh/common/config.h"

namespace llmesh::rpc {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";
  int max_message_bytes = 64 << 20;
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Written with the bound port once listening (launchers and tests read it).
  std::string port_file;
  // The stack's shared secret (cluster_auth.h). Empty: every RPC is open.
  std::string cluster_token;

  // From the options every service has (CommonServiceOptions).
  static absl::StatusOr<ServerOptions> FromConfig(const Config& config);
};

// Blocks SIGTERM/SIGINT/SIGPIPE in the calling thread and every thread it
// creates afterwards, so that WaitForShutdownSignal can take them with
// sigwait. Call first thing in main(), before any thread exists.
void BlockShutdownSignals();

class ServerRunner {
 public:
  explicit ServerRunner(ServerOptions options);
  ~ServerRunner();

  // Who may call a service when a cluster token is set: the stack only, or
  // anyone (a public API with its own authentication).
  enum class Access { kCluster, kPublic };
  // Services must outlive the runner. Each is reported in health under its
  // full name (e.g. "llmesh.v1.EngineService") as well as under "".
  void AddService(grpc::Service* service, std::string full_name, Access access = Access::kCluster);

  absl::Status Start();
  int port() const { return port_; }
  std::string address() const;

  // TLS or other listener credentials (before Start); default insecure.
  void SetCredentials(std::shared_ptr<grpc::ServerCredentials> credentials) { credentials_ = std::move(credentials); }
  // Runs at the start of Shutdown(), before health turns NOT_SERVING and the
  // drain begins (e.g. a worker deregistering from the gateway).
  void OnShutdown(std::function<void()> fn) { on_shutdown_.push_back(std::move(fn)); }

  // grpc.health.v1 status of every registered service ("" included).
  void SetServing(bool serving);

  // Blocks until SIGTERM/SIGINT (or RequestShutdown), then drains.
  void WaitForShutdownSignal();
  // Stops accepting, reports NOT_SERVING, waits up to shutdown_grace for
  // in-flight RPCs, then cancels what is left. Idempotent.
  void Shutdown();
  // Wakes WaitForShutdownSignal from another thread (tests, fatal errors).
  void RequestShutdown();

  grpc::Server* server() { return server_.get(); }

 private:
  ServerOptions options_;
  std::vector<grpc::Service*> services_;
  std::vector<std::string> service_names_;
  std::vector<std::string> public_services_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::vector<std::function<void()>> on_shutdown_;
  int port_ = 0;
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> shutdown_requested_{false};
};

}  // namespace llmesh::rpc
