// The engine workers rag-svc embeds with, and which one takes each call.
//
// Workers come from fixed targets and/or the gateway's live worker list
// (WorkerRegistry.ListWorkers), re-read every `refresh`, so Embed follows
// `llmesh scale engine N` within seconds. A `dns:///host:port` target is
// resolved here on every refresh into one worker per address (a headless
// Service, a compose service with replicas); other targets are one worker
// each, connected as given. Resolving here rather than handing the name to
// gRPC's round_robin policy matters for scaling: gRPC re-resolves a name only
// when a connection breaks (and at most every 30 s), so a new replica would
// get no embeddings until then.
//
// Each call goes to the worker serving the model with the fewest calls in
// flight, ties in turn; one that answered UNAVAILABLE is passed over for
// `cooldown` while others are left. Thread-safe.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::rag {

struct EnginePoolOptions {
  std::vector<std::string> targets;  // host:port, or dns:///host:port for every address
  std::string gateway;               // WorkerRegistry whose live workers to use; "" for none
  absl::Duration refresh = absl::Seconds(2);
  absl::Duration cooldown = absl::Seconds(2);
};

class EnginePool {
 public:
  struct Worker {
    std::string address;
    std::vector<std::string> models;  // empty: unknown, taken to serve any model
    std::unique_ptr<v1::EngineService::Stub> stub;
    int outstanding = 0;  // guarded by the pool's mutex
    absl::Time failed_until = absl::InfinitePast();
  };

  // A worker picked for one call; gives its slot back when it goes.
  class Lease {
   public:
    Lease(EnginePool* pool, std::shared_ptr<Worker> w) : pool_(pool), w_(std::move(w)) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), w_(std::move(o.w_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    v1::EngineService::Stub& stub() const { return *w_->stub; }
    const std::string& address() const { return w_->address; }
    // The worker answered UNAVAILABLE: pass it over for a while.
    void Fail();

   private:
    EnginePool* pool_;
    std::shared_ptr<Worker> w_;
  };

  explicit EnginePool(EnginePoolOptions options);
  ~EnginePool();

  // Reads the workers now, then every `refresh` in the background.
  void Start();
  void Stop();

  // A worker for `model`, none of `exclude` (the ones this call already
  // tried). UNAVAILABLE when none is known, even after reading them again.
  absl::StatusOr<Lease> Acquire(const std::string& model, const std::set<std::string>& exclude);
  // Addresses of the workers known now.
  std::vector<std::string> Addresses() const;

 private:
  void Loop();
  // Re-reads the gateway's list and the DNS names; keeps the last good
  // answer of a source that fails.
  void Refresh();
  std::shared_ptr<Worker> Pick(const std::string& model, const std::set<std::string>& exclude);

  EnginePoolOptions options_;
  std::unique_ptr<v1::WorkerRegistry::Stub> registry_;
  std::mutex refresh_mu_;  // one Refresh at a time
  std::map<std::string, std::vector<std::string>> from_gateway_;  // address -> models
  std::map<std::string, std::set<std::string>> from_dns_;         // target -> addresses

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, std::shared_ptr<Worker>> workers_;
  uint64_t turn_ = 0;
  std::thread thread_;
};

}  // namespace llmesh::rag
