// The engine workers the gateway knows: where each came from (static list,
// DNS, self-registration), which models it serves, whether it is healthy, and
// how much work the gateway has outstanding on it. Pure bookkeeping (no RPC):
// the worker pool fills it from health checks, DNS and the registry service.
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace llmesh::gateway {

enum WorkerSource : unsigned { kSourceStatic = 1, kSourceDns = 2, kSourceRegistered = 4 };

struct WorkerState {
  std::string address;
  unsigned sources = 0;
  std::vector<std::string> models;
  // Last health check said SERVING and no stream has failed since.
  bool healthy = false;
  // Deregistered (stopping): no new work.
  bool draining = false;
  // Requests the gateway has in flight on it.
  int outstanding = 0;
  // Queued + running sequences, as the worker last reported (heartbeat).
  int reported_load = 0;
  absl::Time last_heartbeat = absl::InfinitePast();
  // Times it registered: a new count is a new process at this address.
  int64_t registrations = 0;

  bool Serves(const std::string& model) const;
  // What routing compares: the larger of our own count and the worker's report.
  int load() const { return outstanding > reported_load ? outstanding : reported_load; }
  bool routable() const { return healthy && !draining; }
};

class WorkerTable {
 public:
  // Adds the worker under `source` (or adds the source to a known worker).
  // True when the address is new.
  bool Add(const std::string& address, unsigned source);
  // Drops `source` from the worker; the worker goes when no source is left.
  // True when the worker was removed.
  bool RemoveSource(const std::string& address, unsigned source);
  // Self-registration: known, healthy (it registers once its models loaded).
  void Register(const std::string& address, const std::vector<std::string>& models, absl::Time now);
  // False when the worker is unknown (it should register again).
  bool Heartbeat(const std::string& address, const std::vector<std::string>& models, int load, absl::Time now);
  // The worker is stopping: route nothing new to it, and forget its registration.
  bool Deregister(const std::string& address);
  // Registered-only workers whose last heartbeat is older than `timeout`: removed and returned.
  std::vector<std::string> ExpireHeartbeats(absl::Time now, absl::Duration timeout);
  // Result of a health check (models: what it serves, when it answered).
  void SetHealth(const std::string& address, bool healthy, const std::vector<std::string>* models);
  // A stream to it failed: no traffic until a health check passes again.
  void MarkFailed(const std::string& address);
  // In-flight accounting.
  void Acquire(const std::string& address);
  void Release(const std::string& address);

  // WorkerState::registrations of the worker; 0 when unknown.
  int64_t Registrations(const std::string& address) const;

  std::vector<WorkerState> Snapshot() const;
  std::vector<std::string> Addresses(unsigned source_mask) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, WorkerState> workers_;
};

}  // namespace llmesh::gateway
