// Client-side helpers: channels with llmesh's limits and keepalive, and
// contexts that always carry a deadline.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace llmesh::rpc {

// Metadata key carrying the request id from the gateway to every service.
inline constexpr char kRequestIdKey[] = "x-request-id";

// A plaintext channel to an internal service at `target` (host:port or any
// gRPC target such as dns:///engine:50052), with keepalive and message limits;
// every call on it carries the process's cluster token (cluster_auth.h).
std::shared_ptr<grpc::Channel> CreateChannel(const std::string& target,
                                             int max_message_bytes = 64 << 20);
// The same for a server outside the stack (a user's tool server): it never
// sees the cluster token.
std::shared_ptr<grpc::Channel> CreateExternalChannel(const std::string& target,
                                                     int max_message_bytes = 64 << 20);

// A context with a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> ContextWithTimeout(absl::Duration timeout);

// A context for a downstream call made while serving `parent`: it inherits the
// parent's deadline (capped at `max_timeout` from now), is cancelled when the
// parent is, and carries the parent's request id.
std::unique_ptr<grpc::ClientContext> ChildContext(grpc::CallbackServerContext* parent,
                                                  absl::Duration max_timeout);

// Waits until the channel is connected, or the timeout passes.
absl::Status WaitForConnected(grpc::Channel& channel, absl::Duration timeout);

// The request id in a server context's metadata, or "" if none.
std::string RequestIdOf(const grpc::ServerContextBase& ctx);

}  // namespace llmesh::rpc
