// Calls from the gateway to rag-svc and agent-svc on a client's behalf: the
// context they carry, and how their failures are reported.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace llmesh::gateway {

// A context with the request's deadline and id (x-request-id).
std::unique_ptr<grpc::ClientContext> DownstreamContext(absl::Time deadline, const std::string& request_id);

// The same for a call made while serving a gRPC client: its cancellation and
// deadline propagate (capped at `cap` from now).
std::unique_ptr<grpc::ClientContext> DownstreamContext(grpc::CallbackServerContext* parent, absl::Duration cap,
                                                       const std::string& request_id);

// A downstream failure as the gateway reports it: unreachable (UNAVAILABLE,
// UNKNOWN) becomes UNAVAILABLE naming `what` ("rag service (Query)"); the
// rest (NOT_FOUND, INVALID_ARGUMENT, DEADLINE_EXCEEDED, ...) pass through.
absl::Status DownstreamError(const grpc::Status& status, const std::string& what);

}  // namespace llmesh::gateway
