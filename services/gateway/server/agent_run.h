// AgentRun through the gateway: agent-svc Run, step by step.
//   gRPC: a server-streaming reactor over a client-streaming one. Flow control
//   is one step at a time: the next step is read from agent-svc only when the
//   previous one has been written to the client, so a slow client slows the
//   proxy, not its memory. Cancellation and the deadline propagate; a client
//   that stops reading cancels the run.
//   HTTP: AgentRunStream queues the steps for the handler thread (SSE or one
//   JSON object); the queue is bounded by the run's max_steps.
// A run that fails after streaming steps ends with an ERROR step either way
// (agent-svc's own, or one made here when agent-svc or the connection to it
// went away): over gRPC the steps, that step, then the (clear) status; over
// HTTP a 200 whose last steps say why. A failure before any step keeps its
// status (400 for a bad request). Error text is scrubbed of internal
// addresses (rpc/scrub.h).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "generation.h"
#include "http_common.h"
#include "llmesh/v1/agent.grpc.pb.h"

namespace llmesh::gateway {

// The gRPC AgentRun reactor. `reject` not OK: finishes with it at once.
// Otherwise runs `req` on gw.agent (which must be set).
grpc::ServerWriteReactor<v1::AgentStep>* NewAgentRunProxy(GatewayContext& gw, grpc::CallbackServerContext* ctx,
                                                          v1::AgentRunRequest req, const std::string& request_id,
                                                          const absl::Status& reject);

class AgentRunStream : public grpc::ClientReadReactor<v1::AgentStep> {
 public:
  // Starts the run; the stream keeps itself alive until agent-svc is done.
  static std::shared_ptr<AgentRunStream> Start(v1::AgentService::Stub& stub, v1::AgentRunRequest req,
                                               const std::string& request_id, absl::Time deadline);
  // Steps as they arrive; closed with the run's status while none came, else OK.
  const std::shared_ptr<BlockingQueue<v1::AgentStep>>& steps() const { return steps_; }
  // From any thread: stop the run (the client went away).
  void Cancel() { ctx_->TryCancel(); }

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  AgentRunStream() = default;

  std::shared_ptr<AgentRunStream> self_;  // until OnDone
  std::unique_ptr<grpc::ClientContext> ctx_;
  v1::AgentRunRequest req_;
  v1::AgentStep step_;
  std::optional<v1::AgentStep> last_;
  bool saw_error_ = false;
  std::shared_ptr<BlockingQueue<v1::AgentStep>> steps_ = std::make_shared<BlockingQueue<v1::AgentStep>>();
};

}  // namespace llmesh::gateway
