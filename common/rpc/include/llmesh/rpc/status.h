// absl::Status <-> grpc::Status, done once at the service edge. Libraries
// return absl::Status; servers convert on the way out, clients on the way in.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace llmesh::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace llmesh::rpc
