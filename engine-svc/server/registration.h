// Self-registration with the gateway (gateway.proto WorkerRegistry): with
// --gateway ADDR, the worker registers once its models are loaded, heartbeats
// with its load (queued + running sequences), registers again when the gateway
// no longer knows it (it restarted), and deregisters when shutdown starts,
// before the drain, so the gateway stops routing to it first; it then keeps
// accepting for --deregister-delay (requests the gateway routed here just
// before it deregistered still land) before the listener closes and the
// drain of in-flight streams begins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/common/config.h"
#include "llmesh/engine/engine.h"
#include "llmesh/rpc/server.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::engine {

// --gateway, --advertise and --deregister-delay.
std::vector<OptionSpec> RegistrationOptions();

class GatewayRegistration {
 public:
  GatewayRegistration(std::string gateway, std::string advertise, Engine& engine);
  ~GatewayRegistration();

  void Start();
  // Deregisters (best effort, bounded) and stops heartbeating. Idempotent.
  // True when the gateway acknowledged it.
  bool Deregister();

 private:
  void Loop();
  std::vector<std::string> Models() const;
  int32_t Load() const;

  std::string gateway_, advertise_;
  Engine& engine_;
  std::unique_ptr<v1::WorkerRegistry::Stub> stub_;
  std::mutex mu_;
  std::condition_variable cv_;
  // Held across each registry RPC, so a Register or Heartbeat already on the
  // wire reaches the gateway before the Deregister does.
  std::mutex rpc_mu_;
  bool stop_ = false;
  std::atomic<bool> deregistered_{false};
  std::thread thread_;
};

// nullptr when --gateway is not set. Hooks deregistration into the runner's shutdown.
absl::StatusOr<std::shared_ptr<GatewayRegistration>> StartRegistration(const Config& config,
                                                                       rpc::ServerRunner& runner, Engine& engine);

}  // namespace llmesh::engine
