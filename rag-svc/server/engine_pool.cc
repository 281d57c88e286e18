#include "engine_pool.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/resolve.h"
#include "spdlog/spdlog.h"

namespace llmesh::rag {
namespace {

constexpr absl::string_view kDnsScheme = "dns:///";
constexpr absl::Duration kListTimeout = absl::Seconds(2);

bool Serves(const EnginePool::Worker& w, const std::string& model) {
  return w.models.empty() || std::find(w.models.begin(), w.models.end(), model) != w.models.end();
}

}  // namespace

EnginePool::Lease::~Lease() {
  if (!w_) return;
  std::lock_guard lock(pool_->mu_);
  --w_->outstanding;
}

void EnginePool::Lease::Fail() {
  std::lock_guard lock(pool_->mu_);
  w_->failed_until = absl::Now() + pool_->options_.cooldown;
}

EnginePool::EnginePool(EnginePoolOptions options) : options_(std::move(options)) {
  if (!options_.gateway.empty())
    registry_ = v1::WorkerRegistry::NewStub(rpc::CreateChannel(options_.gateway));
}

EnginePool::~EnginePool() { Stop(); }

void EnginePool::Start() {
  Refresh();
  const bool dynamic = registry_ || std::any_of(options_.targets.begin(), options_.targets.end(),
                                                [](const std::string& t) { return absl::StartsWith(t, kDnsScheme); });
  if (dynamic) thread_ = std::thread([this] { Loop(); });
}

void EnginePool::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EnginePool::Loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.refresh), [this] { return stop_; })) {
    lock.unlock();
    Refresh();
    lock.lock();
  }
}

void EnginePool::Refresh() {
  std::lock_guard refresh_lock(refresh_mu_);
  if (registry_) {
    auto ctx = rpc::ContextWithTimeout(kListTimeout);
    v1::ListWorkersResponse resp;
    if (grpc::Status s = registry_->ListWorkers(ctx.get(), v1::ListWorkersRequest(), &resp); s.ok()) {
      from_gateway_.clear();
      for (const auto& w : resp.workers())
        from_gateway_[w.address()] = std::vector<std::string>(w.models().begin(), w.models().end());
    } else {
      spdlog::warn("event=engine_list_failed gateway={} code={} error={}", options_.gateway,
                   static_cast<int>(s.error_code()), s.error_message());
    }
  }
  // Address -> models (empty: unknown) of every worker the sources name.
  std::map<std::string, std::vector<std::string>> want = from_gateway_;
  for (const auto& t : options_.targets) {
    if (!absl::StartsWith(t, kDnsScheme)) {
      want.try_emplace(t);
      continue;
    }
    if (auto found = rpc::ResolveAll(t.substr(kDnsScheme.size()))) {
      from_dns_[t] = std::move(*found);
    } else {
      spdlog::warn("event=dns_failed target={}", t);
    }
    for (const auto& a : from_dns_[t]) want.try_emplace(a);
  }

  std::lock_guard lock(mu_);
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (want.count(it->first)) {
      ++it;
      continue;
    }
    spdlog::info("event=engine_removed worker={}", it->first);
    it = workers_.erase(it);  // calls in flight keep their Worker alive
  }
  for (auto& [address, models] : want) {
    auto& w = workers_[address];
    if (!w) {
      w = std::make_shared<Worker>();
      w->address = address;
      w->stub = v1::EngineService::NewStub(rpc::CreateChannel(address));
      spdlog::info("event=engine_added worker={}", address);
    }
    w->models = std::move(models);
  }
}

std::shared_ptr<EnginePool::Worker> EnginePool::Pick(const std::string& model,
                                                     const std::set<std::string>& exclude) {
  std::lock_guard lock(mu_);
  std::vector<Worker*> all;
  for (auto& [address, w] : workers_)
    if (!exclude.count(address)) all.push_back(w.get());
  if (all.empty()) return nullptr;
  // Prefer, in order: serving the model and not cooling down; serving it;
  // anything (the worker then names the problem, e.g. an unknown model).
  const absl::Time now = absl::Now();
  std::vector<Worker*> candidates;
  for (Worker* w : all)
    if (Serves(*w, model) && w->failed_until <= now) candidates.push_back(w);
  if (candidates.empty())
    for (Worker* w : all)
      if (Serves(*w, model)) candidates.push_back(w);
  if (candidates.empty()) candidates = all;
  // Fewest in flight; among equals, the next one in turn.
  const size_t start = turn_++ % candidates.size();
  Worker* best = nullptr;
  for (size_t i = 0; i < candidates.size(); ++i) {
    Worker* w = candidates[(start + i) % candidates.size()];
    if (best == nullptr || w->outstanding < best->outstanding) best = w;
  }
  ++best->outstanding;
  return workers_.at(best->address);
}

absl::StatusOr<EnginePool::Lease> EnginePool::Acquire(const std::string& model,
                                                      const std::set<std::string>& exclude) {
  auto w = Pick(model, exclude);
  if (!w && exclude.empty()) {
    // None known yet (the gateway has no workers registered, or a DNS name
    // had no answer): look again before giving up.
    Refresh();
    w = Pick(model, exclude);
  }
  if (!w) {
    return absl::UnavailableError(
        exclude.empty()
            ? absl::StrCat("no engine workers known",
                           registry_ ? absl::StrCat(" (the gateway at ", options_.gateway, " lists none)") : "")
            : absl::StrCat("every engine worker failed (", absl::StrJoin(exclude, ", "), ")"));
  }
  return Lease(this, std::move(w));
}

std::vector<std::string> EnginePool::Addresses() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [address, _] : workers_) out.push_back(address);
  return out;
}

}  // namespace llmesh::rag
