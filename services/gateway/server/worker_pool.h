// The engine workers behind the gateway, over the pure WorkerTable: a channel
// per worker, a background loop that health-checks every worker
// (grpc.health.v1 for llmesh.v1.EngineService; NOT_SERVING gets no traffic),
// asks each which models it serves (ListModels), re-resolves the DNS name,
// and drops registered workers that missed their heartbeats. A worker that
// registers again (a new process at a known address) gets its connection
// backoff reset; the channels of workers that left are dropped.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "engine_mux.h"
#include "llmesh/gateway/router.h"
#include "llmesh/gateway/worker_table.h"
#include "llmesh/v1/engine.grpc.pb.h"

namespace llmesh::gateway {

struct WorkerPoolOptions {
  std::vector<std::string> static_workers;
  std::string dns_target;  // host:port resolving to several addresses
  absl::Duration dns_refresh = absl::Seconds(5);
  absl::Duration health_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  int max_message_bytes = 64 << 20;
};

class WorkerPool {
 public:
  WorkerPool(WorkerPoolOptions options, Router& router);
  ~WorkerPool();

  void Start();
  void Stop();
  // Runs on every tick of the background loop (admission expiry).
  void OnTick(std::function<void()> fn) { on_tick_ = std::move(fn); }

  WorkerTable& table() { return table_; }
  std::shared_ptr<v1::EngineService::Stub> Stub(const std::string& address);
  // The worker's GenerateMux stream (engine_mux.h), opened on first use; a
  // new one for a worker that registered again (a new process).
  std::shared_ptr<EngineMux> Mux(const std::string& address);
  // Models served by at least one known worker, with the info a worker gave.
  std::map<std::string, v1::ModelInfo> Models() const;
  bool Knows(const std::string& model) const;
  // A stream to the worker failed: no traffic until it passes a health check.
  void MarkFailed(const std::string& address);
  // Health-check this worker now (after it registers), off the caller's thread.
  void CheckSoon();

 private:
  void Loop();
  void ResolveDns();
  void CheckAll();
  // Drops channels of workers no longer in the table.
  void PruneChannels();

  WorkerPoolOptions options_;
  Router& router_;
  WorkerTable table_;
  std::function<void()> on_tick_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool check_now_ = false;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::map<std::string, std::shared_ptr<v1::EngineService::Stub>> stubs_;
  // With the registration count they were made for. A pruned worker's mux
  // lives on while its stream has generations (a draining worker finishes
  // them); every one ever made is closed at Stop.
  std::map<std::string, std::pair<std::shared_ptr<EngineMux>, int64_t>> muxes_;
  std::vector<std::weak_ptr<EngineMux>> all_muxes_;
  std::map<std::string, v1::ModelInfo> model_info_;
  // WorkerState::registrations when the channel last saw the worker.
  std::map<std::string, int64_t> channel_registrations_;
  absl::Time next_dns_ = absl::InfinitePast();
  std::thread thread_;
};

}  // namespace llmesh::gateway
