// API keys: a request is allowed when no key is configured, or when it
// carries one of the configured keys as "Bearer KEY" (HTTP Authorization
// header, gRPC `authorization` metadata). Comparison is constant-time.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace llmesh::gateway {

class ApiKeys {
 public:
  ApiKeys() = default;
  explicit ApiKeys(std::vector<std::string> keys);

  bool enabled() const { return !keys_.empty(); }
  // `authorization`: the header / metadata value ("" when absent).
  absl::Status Check(const std::string& authorization) const;

 private:
  std::vector<std::string> keys_;
};

}  // namespace llmesh::gateway
