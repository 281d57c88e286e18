#include "llmesh/gateway/worker_table.h"

#include <algorithm>

namespace llmesh::gateway {

bool WorkerState::Serves(const std::string& model) const {
  return std::find(models.begin(), models.end(), model) != models.end();
}

bool WorkerTable::Add(const std::string& address, unsigned source) {
  std::lock_guard lock(mu_);
  auto [it, added] = workers_.try_emplace(address);
  it->second.address = address;
  it->second.sources |= source;
  return added;
}

bool WorkerTable::RemoveSource(const std::string& address, unsigned source) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(address);
  if (it == workers_.end()) return false;
  it->second.sources &= ~source;
  if (it->second.sources != 0) return false;
  workers_.erase(it);
  return true;
}

void WorkerTable::Register(const std::string& address, const std::vector<std::string>& models, absl::Time now) {
  std::lock_guard lock(mu_);
  WorkerState& w = workers_[address];
  w.address = address;
  w.sources |= kSourceRegistered;
  w.models = models;
  w.healthy = true;
  w.draining = false;
  w.last_heartbeat = now;
  ++w.registrations;
}

bool WorkerTable::Heartbeat(const std::string& address, const std::vector<std::string>& models, int load,
                            absl::Time now) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(address);
  if (it == workers_.end() || !(it->second.sources & kSourceRegistered)) return false;
  it->second.last_heartbeat = now;
  it->second.reported_load = load < 0 ? 0 : load;
  if (!models.empty()) it->second.models = models;
  return true;
}

bool WorkerTable::Deregister(const std::string& address) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(address);
  if (it == workers_.end()) return false;
  it->second.draining = true;
  it->second.sources &= ~kSourceRegistered;
  if (it->second.sources == 0 && it->second.outstanding == 0) workers_.erase(it);
  return true;
}

std::vector<std::string> WorkerTable::ExpireHeartbeats(absl::Time now, absl::Duration timeout) {
  std::lock_guard lock(mu_);
  std::vector<std::string> gone;
  for (auto it = workers_.begin(); it != workers_.end();) {
    WorkerState& w = it->second;
    bool registered_only = w.sources == kSourceRegistered;
    bool deregistered_idle = w.sources == 0 && w.outstanding == 0;
    if ((registered_only && now - w.last_heartbeat > timeout) || deregistered_idle) {
      gone.push_back(it->first);
      it = workers_.erase(it);
    } else {
      if ((w.sources & kSourceRegistered) && now - w.last_heartbeat > timeout) w.sources &= ~kSourceRegistered;
      ++it;
    }
  }
  return gone;
}

void WorkerTable::SetHealth(const std::string& address, bool healthy, const std::vector<std::string>* models) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(address);
  if (it == workers_.end()) return;
  it->second.healthy = healthy;
  if (models) it->second.models = *models;
}

void WorkerTable::MarkFailed(const std::string& address) { SetHealth(address, false, nullptr); }

void WorkerTable::Acquire(const std::string& address) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(address);
  if (it != workers_.end()) ++it->second.outstanding;
}

void WorkerTable::Release(const std::string& address) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(address);
  if (it != workers_.end() && it->second.outstanding > 0) --it->second.outstanding;
}

int64_t WorkerTable::Registrations(const std::string& address) const {
  std::lock_guard lock(mu_);
  auto it = workers_.find(address);
  return it == workers_.end() ? 0 : it->second.registrations;
}

std::vector<WorkerState> WorkerTable::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<WorkerState> out;
  out.reserve(workers_.size());
  for (const auto& [_, w] : workers_) out.push_back(w);
  return out;
}

std::vector<std::string> WorkerTable::Addresses(unsigned source_mask) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [a, w] : workers_)
    if (w.sources & source_mask) out.push_back(a);
  return out;
}

}  // namespace llmesh::gateway
