#include "run_reactor.h"

#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/scrub.h"
#include "llmesh/rpc/status.h"

namespace llmesh::agent {

RunReactor* RunReactor::Start(Agent& agent, WorkPool& pool, grpc::CallbackServerContext* ctx,
                              const v1::AgentRunRequest* request, absl::Duration max_timeout) {
  auto* r = new RunReactor(agent, ctx, request, max_timeout);
  if (!pool.Submit([r] { r->Work(); }))
    r->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many agent runs in progress; try again later"));
  return r;
}

void RunReactor::Work() {
  RunEnv env;
  env.deadline = absl::Now() + max_timeout_;
  auto d = ctx_->deadline();
  if (d != std::chrono::system_clock::time_point::max()) env.deadline = std::min(env.deadline, absl::FromChrono(d));
  env.cancel = &cancel_;
  env.request_id = rpc::RequestIdOf(*ctx_);
  if (ctx_->IsCancelled()) cancel_.Cancel();
  absl::Status st = agent_.Run(*request_, env, [this](const v1::AgentStep& step) { Push(step); });

  // Finish here only if no write is in flight; otherwise OnWriteDone does
  // once the queue drains. Nothing touches `this` after Finish.
  grpc::Status status = rpc::ToGrpcStatus(rpc::ScrubAddresses(st));
  {
    std::lock_guard lock(mu_);
    loop_done_ = true;
    status_ = status;
    if (writing_) return;
  }
  Finish(status);
}

void RunReactor::Push(const v1::AgentStep& step) {
  const v1::AgentStep* first = nullptr;
  {
    std::lock_guard lock(mu_);
    if (write_failed_) return;  // the client is gone; the loop is being cancelled
    queue_.push_back(step);
    if (writing_) return;
    writing_ = true;
    first = &queue_.front();  // deque: stays put while others are pushed
  }
  StartWrite(first);
}

void RunReactor::OnWriteDone(bool ok) {
  const v1::AgentStep* next = nullptr;
  grpc::Status finish;
  {
    std::lock_guard lock(mu_);
    queue_.pop_front();
    if (!ok) {
      write_failed_ = true;
      queue_.clear();
    }
    if (!queue_.empty()) {
      next = &queue_.front();
    } else {
      writing_ = false;
      if (!loop_done_) {
        if (!ok) cancel_.Cancel();
        return;
      }
      finish = status_;
    }
  }
  if (next) {
    StartWrite(next);
    return;
  }
  Finish(finish);
}

}  // namespace llmesh::agent
