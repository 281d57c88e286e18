#include "llmesh/gateway/auth.h"

namespace llmesh::gateway {
namespace {

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

}  // namespace

ApiKeys::ApiKeys(std::vector<std::string> keys) {
  for (auto& k : keys)
    if (!k.empty()) keys_.push_back(std::move(k));
}

absl::Status ApiKeys::Check(const std::string& authorization) const {
  if (keys_.empty()) return absl::OkStatus();
  if (authorization.empty())
    return absl::UnauthenticatedError("missing API key: send \"Authorization: Bearer KEY\"");
  static const std::string kBearer = "bearer ";
  std::string key;
  if (authorization.size() > kBearer.size()) {
    std::string scheme = authorization.substr(0, kBearer.size());
    for (char& c : scheme) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    if (scheme == kBearer) key = authorization.substr(kBearer.size());
  }
  bool ok = false;
  for (const auto& k : keys_) ok |= ConstantTimeEquals(key, k);
  if (!ok) return absl::UnauthenticatedError("invalid API key");
  return absl::OkStatus();
}

}  // namespace llmesh::gateway
