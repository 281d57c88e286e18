// A client context for a call made on behalf of an agent run (to an engine,
// the tokenizer, the gateway, rag-svc or a remote tool): the run's deadline,
// its request id as x-request-id, and TryCancel when the run is cancelled.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "llmesh/agent/cancellation.h"

namespace llmesh::agent {

class DownstreamCall {
 public:
  // `cancel` may be null (calls outside a run, e.g. RegisterTool's Describe).
  DownstreamCall(absl::Time deadline, const Cancellation* cancel, const std::string& request_id);
  grpc::ClientContext* ctx() { return ctx_.get(); }

 private:
  // Declared first, destroyed last: the registration (which may call
  // TryCancel) is gone before the context is.
  std::unique_ptr<grpc::ClientContext> ctx_;
  Cancellation::Registration registration_;
};

// A failed downstream call as this service reports it: the code kept, the
// message prefixed with who failed ("engine: ...") and scrubbed of addresses
// (rpc/scrub.h), since it reaches clients in steps and statuses; the log
// (debug) names `target`.
absl::Status FromDownstream(const std::string& who, const std::string& target, const grpc::Status& status);

}  // namespace llmesh::agent
