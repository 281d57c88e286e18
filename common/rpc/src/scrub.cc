#include "llmesh/rpc/scrub.h"

#include <regex>

namespace llmesh::rpc {

std::string ScrubAddresses(absl::string_view text) {
  // An optional gRPC scheme, then an IPv4 address, a bracketed or
  // percent-encoded IPv6 address, or localhost, with an optional port; or a
  // unix socket path.
  static const std::regex kAddress(
      R"((?:\b(?:ipv4|ipv6|dns):(?://[^/\s]*/)?)?)"
      R"((?:\b\d{1,3}(?:\.\d{1,3}){3}\b|\[[0-9A-Fa-f:.]+(?:%[0-9A-Za-z]+)?\]|%5B[0-9A-Fa-f:.%]+%5D|\blocalhost\b))"
      R"((?::\d{1,5}\b)?|\bunix(?:-abstract)?:[^\s,;)]+)");
  return std::regex_replace(std::string(text), kAddress, "<address>");
}

absl::Status ScrubAddresses(const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), ScrubAddresses(status.message()));
}

}  // namespace llmesh::rpc
