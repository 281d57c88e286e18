// Picks the engine worker for a request: the routable worker serving the model
// with the least outstanding work, unless a worker already holds a long prefix
// of the prompt in its KV cache (it served a request with the same prefix) and
// is not much busier than the least loaded one (prefix affinity).
//
// Prefixes are remembered as hashes of the prompt cut at every multiple of
// `block_tokens` from `min_prefix_tokens` on, in a bounded LRU map.
// Thread-safe; no RPC.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/gateway/worker_table.h"

namespace llmesh::gateway {

struct RouterOptions {
  int block_tokens = 16;
  int min_prefix_tokens = 32;
  // Affinity holds while the cached worker's load is at most the minimum load + slack.
  int affinity_slack = 2;
  size_t max_entries = 65536;
};

struct RouteDecision {
  std::string address;
  bool affinity = false;       // chosen for its cached prefix
  int affinity_tokens = 0;     // length of that prefix
};

class Router {
 public:
  explicit Router(RouterOptions options = {}) : options_(options) {}

  // `workers`: a snapshot of the table; `exclude`: workers already tried for
  // this request. UNAVAILABLE when no routable worker serves `model`.
  absl::StatusOr<RouteDecision> Pick(const std::vector<WorkerState>& workers, const std::string& model,
                                     const std::vector<int32_t>& prompt, const std::set<std::string>& exclude);
  // Forgets everything cached on a worker (it died or left).
  void Forget(const std::string& address);
  size_t entries() const;

 private:
  // Hashes of prompt[0..k) for k = min_prefix, min_prefix + block, ... <= |prompt|, longest last.
  std::vector<uint64_t> PrefixHashes(const std::string& model, const std::vector<int32_t>& prompt) const;
  void Remember(uint64_t hash, const std::string& address);

  RouterOptions options_;
  mutable std::mutex mu_;
  // LRU: most recent at the front.
  std::list<std::pair<uint64_t, std::string>> lru_;
  std::unordered_map<uint64_t, std::list<std::pair<uint64_t, std::string>>::iterator> index_;
};

}  // namespace llmesh::gateway
