// grpc.health.v1 client calls, for launchers, routers and tests.
#pragma once

#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace llmesh::rpc {

// The serving status name ("SERVING", "NOT_SERVING", ...) of `service` ("" =
// the whole server); UNAVAILABLE if the server cannot be reached, NOT_FOUND if
// it does not know the service.
absl::StatusOr<std::string> CheckHealth(grpc::Channel& channel, const std::string& service,
                                        absl::Duration timeout);

// Polls until SERVING or the timeout passes; the error says the last status seen.
absl::Status WaitForServing(grpc::Channel& channel, const std::string& service, absl::Duration timeout);

}  // namespace llmesh::rpc
