#include "llmesh/gateway/router.h"

#include <climits>

#include "absl/strings/str_cat.h"

namespace llmesh::gateway {
namespace {

// FNV-1a over the model name, then 64-bit mixing per token.
uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

}  // namespace

std::vector<uint64_t> Router::PrefixHashes(const std::string& model, const std::vector<int32_t>& prompt) const {
  std::vector<uint64_t> out;
  if (static_cast<int>(prompt.size()) < options_.min_prefix_tokens || options_.block_tokens < 1) return out;
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : model) h = (h ^ c) * 1099511628211ULL;
  for (size_t i = 0; i < prompt.size(); ++i) {
    h = Mix(h, static_cast<uint32_t>(prompt[i]));
    size_t len = i + 1;
    if (static_cast<int>(len) >= options_.min_prefix_tokens &&
        (len - options_.min_prefix_tokens) % options_.block_tokens == 0)
      out.push_back(h);
  }
  return out;
}

void Router::Remember(uint64_t hash, const std::string& address) {
  auto it = index_.find(hash);
  if (it != index_.end()) {
    it->second->second = address;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(hash, address);
  index_[hash] = lru_.begin();
  while (lru_.size() > options_.max_entries) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

absl::StatusOr<RouteDecision> Router::Pick(const std::vector<WorkerState>& workers, const std::string& model,
                                           const std::vector<int32_t>& prompt, const std::set<std::string>& exclude) {
  const WorkerState* least = nullptr;
  int min_load = INT_MAX;
  size_t any_known = 0;
  for (const auto& w : workers) {
    if (!w.Serves(model)) continue;
    ++any_known;
    if (!w.routable() || exclude.count(w.address)) continue;
    // Ties go to the first in address order (the snapshot is sorted).
    if (w.load() < min_load) {
      min_load = w.load();
      least = &w;
    }
  }
  if (!least) {
    if (any_known == 0)
      return absl::UnavailableError(absl::StrCat("no engine worker serves model '", model, "'"));
    return absl::UnavailableError(absl::StrCat("no healthy engine worker for model '", model, "'"));
  }
  RouteDecision d{least->address, false, 0};
  std::vector<uint64_t> hashes = PrefixHashes(model, prompt);
  std::lock_guard lock(mu_);
  // Longest cached prefix whose worker is routable and not overloaded.
  for (size_t i = hashes.size(); i-- > 0;) {
    auto it = index_.find(hashes[i]);
    if (it == index_.end()) continue;
    const std::string& addr = it->second->second;
    for (const auto& w : workers) {
      if (w.address != addr) continue;
      if (w.Serves(model) && w.routable() && !exclude.count(addr) && w.load() <= min_load + options_.affinity_slack) {
        d = {addr, true, options_.min_prefix_tokens + static_cast<int>(i) * options_.block_tokens};
      }
      break;
    }
    if (d.affinity) break;
  }
  for (uint64_t h : hashes) Remember(h, d.address);
  return d;
}

void Router::Forget(const std::string& address) {
  std::lock_guard lock(mu_);
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->second == address) {
      index_.erase(it->first);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t Router::entries() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace llmesh::gateway
