#include "worker_pool.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "llmesh/common/logging.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/resolve.h"
#include "llmesh/rpc/health.h"
#include "spdlog/spdlog.h"

namespace llmesh::gateway {

WorkerPool::WorkerPool(WorkerPoolOptions options, Router& router) : options_(std::move(options)), router_(router) {
  for (const auto& a : options_.static_workers) table_.Add(a, kSourceStatic);
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Start() {
  ResolveDns();
  CheckAll();
  thread_ = std::thread([this] { Loop(); });
}

void WorkerPool::Stop() {
  std::vector<std::weak_ptr<EngineMux>> muxes;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    muxes.swap(all_muxes_);
    muxes_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Streams still open would hold gRPC up at exit.
  for (auto& weak : muxes)
    if (auto m = weak.lock()) m->Close(absl::Seconds(2));
}

void WorkerPool::CheckSoon() {
  {
    std::lock_guard lock(mu_);
    check_now_ = true;
  }
  cv_.notify_all();
}

std::shared_ptr<v1::EngineService::Stub> WorkerPool::Stub(const std::string& address) {
  int64_t registrations = table_.Registrations(address);
  std::lock_guard lock(mu_);
  auto it = stubs_.find(address);
  if (it != stubs_.end()) {
    int64_t& seen = channel_registrations_[address];
    if (seen != registrations) {
      // A new process registered here: connect now, not when the backoff
      // that the old one's exit started would allow.
      seen = registrations;
      grpc::experimental::ChannelResetConnectionBackoff(channels_[address].get());
    }
    return it->second;
  }
  auto channel = rpc::CreateChannel(address, options_.max_message_bytes);
  channels_[address] = channel;
  channel_registrations_[address] = registrations;
  auto stub = std::shared_ptr<v1::EngineService::Stub>(v1::EngineService::NewStub(channel));
  stubs_[address] = stub;
  return stub;
}

std::shared_ptr<EngineMux> WorkerPool::Mux(const std::string& address) {
  auto stub = Stub(address);
  int64_t registrations = table_.Registrations(address);
  std::lock_guard lock(mu_);
  if (stop_) return nullptr;  // shutting down: Generate, per request
  auto& [mux, made_for] = muxes_[address];
  if (!mux || made_for != registrations) {
    // A new process may speak GenerateMux where the old one did not.
    mux = std::make_shared<EngineMux>(stub);
    made_for = registrations;
    all_muxes_.erase(std::remove_if(all_muxes_.begin(), all_muxes_.end(), [](auto& w) { return w.expired(); }),
                     all_muxes_.end());
    all_muxes_.push_back(mux);
  }
  return mux;
}

std::map<std::string, v1::ModelInfo> WorkerPool::Models() const {
  std::map<std::string, v1::ModelInfo> out;
  std::lock_guard lock(mu_);
  for (const auto& w : table_.Snapshot()) {
    for (const auto& m : w.models) {
      auto it = model_info_.find(m);
      v1::ModelInfo info;
      if (it != model_info_.end()) info = it->second;
      info.set_name(m);
      out.emplace(m, info);
    }
  }
  return out;
}

bool WorkerPool::Knows(const std::string& model) const {
  for (const auto& w : table_.Snapshot())
    if (w.Serves(model)) return true;
  return false;
}

void WorkerPool::MarkFailed(const std::string& address) {
  table_.MarkFailed(address);
  router_.Forget(address);
  spdlog::warn("event=worker_failed worker={}", address);
  CheckSoon();
}

void WorkerPool::ResolveDns() {
  if (options_.dns_target.empty()) return;
  auto resolved = rpc::ResolveAll(options_.dns_target);
  if (!resolved) {
    spdlog::warn("event=dns_failed target={}", options_.dns_target);
    return;  // keep what we had
  }
  const std::set<std::string>& found = *resolved;
  for (const auto& a : found)
    if (table_.Add(a, kSourceDns)) spdlog::info("event=worker_added source=dns worker={}", a);
  for (const auto& a : table_.Addresses(kSourceDns))
    if (!found.count(a) && table_.RemoveSource(a, kSourceDns)) router_.Forget(a);
}

void WorkerPool::PruneChannels() {
  std::set<std::string> known;
  for (const auto& w : table_.Snapshot()) known.insert(w.address);
  std::lock_guard lock(mu_);
  for (auto it = stubs_.begin(); it != stubs_.end();) {
    if (known.count(it->first)) {
      ++it;
      continue;
    }
    // In-flight calls hold their own reference to the stub and its channel,
    // and generations on a mux stream keep it open until they end.
    channels_.erase(it->first);
    channel_registrations_.erase(it->first);
    muxes_.erase(it->first);
    it = stubs_.erase(it);
  }
}

void WorkerPool::CheckAll() {
  for (const auto& w : table_.Snapshot()) {
    std::shared_ptr<grpc::Channel> channel;
    Stub(w.address);
    {
      std::lock_guard lock(mu_);
      channel = channels_[w.address];
    }
    auto health = rpc::CheckHealth(*channel, "llmesh.v1.EngineService", absl::Milliseconds(500));
    bool serving = health.ok() && *health == "SERVING";
    if (!serving) {
      if (w.healthy) spdlog::warn("event=worker_unhealthy worker={} status=\"{}\"", w.address,
                                  health.ok() ? *health : std::string(health.status().message()));
      table_.SetHealth(w.address, false, nullptr);
      continue;
    }
    v1::ListModelsResponse resp;
    auto ctx = rpc::ContextWithTimeout(absl::Milliseconds(500));
    grpc::Status st = Stub(w.address)->ListModels(ctx.get(), v1::ListModelsRequest(), &resp);
    if (!st.ok()) {
      table_.SetHealth(w.address, false, nullptr);
      continue;
    }
    std::vector<std::string> models;
    {
      std::lock_guard lock(mu_);
      for (const auto& m : resp.models()) {
        models.push_back(m.name());
        model_info_[m.name()] = m;
      }
    }
    if (!w.healthy) spdlog::info("event=worker_healthy worker={} models={}", w.address, models.size());
    table_.SetHealth(w.address, true, &models);
  }
}

void WorkerPool::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.health_interval)),
                 [this] { return stop_ || check_now_; });
    if (stop_) break;
    check_now_ = false;
    lock.unlock();
    absl::Time now = absl::Now();
    if (now >= next_dns_) {
      ResolveDns();
      next_dns_ = now + options_.dns_refresh;
    }
    for (const auto& a : table_.ExpireHeartbeats(now, options_.heartbeat_timeout)) {
      spdlog::warn("event=worker_dropped worker={} reason=missed_heartbeats", a);
      router_.Forget(a);
    }
    CheckAll();
    PruneChannels();
    if (on_tick_) on_tick_();
    lock.lock();
  }
}

}  // namespace llmesh::gateway
