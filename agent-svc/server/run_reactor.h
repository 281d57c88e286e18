// The Run RPC: one agent run on a worker thread, its steps streamed as they
// happen. The loop hands each step to Push, which queues it and keeps one
// write in flight (gRPC's callback API allows one at a time); the RPC
// finishes once the loop has returned and every queued step is written. A
// client cancel, a failed write or the server's shutdown cancels the run.
#pragma once

#include <deque>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "llmesh/agent/agent.h"
#include "llmesh/agent/cancellation.h"
#include "llmesh/common/work_pool.h"
#include "llmesh/v1/agent.grpc.pb.h"

namespace llmesh::agent {

class RunReactor : public grpc::ServerWriteReactor<v1::AgentStep> {
 public:
  // Deletes itself when done. `max_timeout` caps the client's deadline.
  static RunReactor* Start(Agent& agent, WorkPool& pool, grpc::CallbackServerContext* ctx,
                           const v1::AgentRunRequest* request, absl::Duration max_timeout);

  void OnWriteDone(bool ok) override;
  void OnCancel() override { cancel_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  RunReactor(Agent& agent, grpc::CallbackServerContext* ctx, const v1::AgentRunRequest* request,
             absl::Duration max_timeout)
      : agent_(agent), ctx_(ctx), request_(request), max_timeout_(max_timeout) {}
  void Work();
  void Push(const v1::AgentStep& step);

  Agent& agent_;
  grpc::CallbackServerContext* ctx_;
  const v1::AgentRunRequest* request_;
  absl::Duration max_timeout_;
  Cancellation cancel_;

  std::mutex mu_;
  std::deque<v1::AgentStep> queue_;  // front() is being written while writing_
  bool writing_ = false;
  bool write_failed_ = false;
  bool loop_done_ = false;  // Work has returned: Finish once the queue drains
  grpc::Status status_;
};

}  // namespace llmesh::agent
