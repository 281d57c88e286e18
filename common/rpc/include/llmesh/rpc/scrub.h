// Error text that leaves a service for a client carries no internal
// addresses: a downstream's "127.0.0.1:50050", gRPC's "ipv4:10.0.0.7:50052"
// or "[::1]:50051" tell a caller nothing it can act on and map the
// deployment for anyone who asks. Logs keep them.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace llmesh::rpc {

// `text` with every host:port, IP address and gRPC target URI replaced by "<address>".
std::string ScrubAddresses(absl::string_view text);
// `status` with its message scrubbed.
absl::Status ScrubAddresses(const absl::Status& status);

}  // namespace llmesh::rpc
