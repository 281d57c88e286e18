#include "agent_run.h"

#include <atomic>
#include <optional>

#include "downstream.h"
#include "llmesh/rpc/scrub.h"
#include "llmesh/rpc/status.h"
#include "spdlog/spdlog.h"

namespace llmesh::gateway {
namespace {

constexpr char kWhat[] = "agent service (Run)";

// What a client may read of a step: errors without internal addresses.
void Scrub(v1::AgentStep& step) {
  if (step.kind() == v1::AGENT_STEP_KIND_ERROR || step.tool_error()) step.set_text(rpc::ScrubAddresses(step.text()));
}

// The run's failure as agent-svc reports it, scrubbed.
absl::Status RunStatus(const grpc::Status& s) {
  return s.ok() ? absl::OkStatus() : rpc::ScrubAddresses(DownstreamError(s, kWhat));
}

// The ERROR step ending a run that failed after `last` without one of its
// own (agent-svc, or the connection to it, went away).
v1::AgentStep ErrorStepAfter(const v1::AgentStep& last, const absl::Status& st) {
  v1::AgentStep e;
  e.set_session_id(last.session_id());
  e.set_step(last.step());
  e.set_kind(v1::AGENT_STEP_KIND_ERROR);
  e.set_text(std::string(st.message()));
  return e;
}

// Whether a run that streamed `last` and ended with a failure still needs
// an ERROR step: agent-svc ends its runs with ERROR then USAGE.
bool NeedsErrorStep(const v1::AgentStep& last, bool saw_error) {
  return !saw_error && last.kind() != v1::AGENT_STEP_KIND_USAGE;
}

// Deletes itself once both the client's RPC and the call to agent-svc are done.
class AgentRunProxy final : public grpc::ServerWriteReactor<v1::AgentStep> {
 public:
  // Finishes at once with `st`.
  AgentRunProxy(GatewayMetrics* metrics, const absl::Status& st) : metrics_(metrics), refs_(1), upstream_(this) {
    code_ = st.code();
    Finish(rpc::ToGrpcStatus(st));
  }
  AgentRunProxy(GatewayContext& gw, grpc::CallbackServerContext* server_ctx, v1::AgentRunRequest req,
                const std::string& request_id)
      : metrics_(gw.metrics), refs_(2), upstream_(this), req_(std::move(req)), request_id_(request_id) {
    ctx_ = DownstreamContext(server_ctx, gw.request_timeout, request_id);
    gw.agent->async()->Run(ctx_.get(), &req_, &upstream_);
    // The hold keeps the call open until this side has stopped reading, so
    // its OnDone (which finishes the client's RPC) never races a write.
    upstream_.AddHold();
    upstream_.StartRead(&step_);
    upstream_.StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {  // the client is gone: stop the run
      ctx_->TryCancel();
      ReleaseHold();
      return;
    }
    upstream_.StartRead(&step_);
  }
  void OnCancel() override {
    if (ctx_) ctx_->TryCancel();
  }
  void OnDone() override {
    metrics_->CountRequest("grpc:AgentRun", absl::StatusCodeToString(code_.load()));
    Unref();
  }

 private:
  class Upstream final : public grpc::ClientReadReactor<v1::AgentStep> {
   public:
    explicit Upstream(AgentRunProxy* p) : p_(p) {}
    void OnReadDone(bool ok) override { p_->OnStep(ok); }
    void OnDone(const grpc::Status& s) override { p_->OnRunDone(s); }

   private:
    AgentRunProxy* p_;
  };

  void OnStep(bool ok) {
    if (!ok) {  // end of the run's stream (or its failure; OnRunDone says which)
      ReleaseHold();
      return;
    }
    Scrub(step_);
    saw_error_ = saw_error_ || step_.kind() == v1::AGENT_STEP_KIND_ERROR;
    last_ = step_;
    StartWrite(&step_);  // the next read starts when this write is done
  }
  // No write is in flight: the last read (which follows the last write) is done.
  void OnRunDone(const grpc::Status& s) {
    if (!s.ok())
      spdlog::debug("event=agent_run_failed request_id={} code={} error=\"{}\"", request_id_,
                    static_cast<int>(s.error_code()), s.error_message());
    absl::Status st = RunStatus(s);
    code_ = st.code();
    if (!st.ok() && last_.has_value() && NeedsErrorStep(*last_, saw_error_)) {
      step_ = ErrorStepAfter(*last_, st);
      StartWriteAndFinish(&step_, grpc::WriteOptions(), rpc::ToGrpcStatus(st));
    } else {
      Finish(rpc::ToGrpcStatus(st));
    }
    Unref();
  }
  void ReleaseHold() {
    if (!hold_released_.exchange(true)) upstream_.RemoveHold();
  }
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  GatewayMetrics* metrics_;
  std::atomic<int> refs_;
  std::atomic<bool> hold_released_{false};
  std::atomic<absl::StatusCode> code_{absl::StatusCode::kOk};
  Upstream upstream_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  v1::AgentRunRequest req_;
  std::string request_id_;
  v1::AgentStep step_;  // read from agent-svc, then written to the client
  std::optional<v1::AgentStep> last_;
  bool saw_error_ = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::AgentStep>* NewAgentRunProxy(GatewayContext& gw, grpc::CallbackServerContext* ctx,
                                                          v1::AgentRunRequest req, const std::string& request_id,
                                                          const absl::Status& reject) {
  if (!reject.ok()) return new AgentRunProxy(gw.metrics, reject);
  if (!gw.agent)
    return new AgentRunProxy(gw.metrics,
                             absl::UnavailableError("agents are not configured on this gateway (set its agent address)"));
  return new AgentRunProxy(gw, ctx, std::move(req), request_id);
}

std::shared_ptr<AgentRunStream> AgentRunStream::Start(v1::AgentService::Stub& stub, v1::AgentRunRequest req,
                                                      const std::string& request_id, absl::Time deadline) {
  std::shared_ptr<AgentRunStream> s(new AgentRunStream());
  s->self_ = s;
  s->ctx_ = DownstreamContext(deadline, request_id);
  s->req_ = std::move(req);
  stub.async()->Run(s->ctx_.get(), &s->req_, s.get());
  s->StartRead(&s->step_);
  s->StartCall();
  return s;
}

void AgentRunStream::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  Scrub(step_);
  saw_error_ = saw_error_ || step_.kind() == v1::AGENT_STEP_KIND_ERROR;
  last_ = step_;
  steps_->Push(std::move(step_));
  step_.Clear();
  StartRead(&step_);
}

void AgentRunStream::OnDone(const grpc::Status& status) {
  absl::Status st = RunStatus(status);
  if (!st.ok() && last_.has_value()) {
    // Steps went out: the run's end is a step too, and the response a success.
    if (NeedsErrorStep(*last_, saw_error_)) steps_->Push(ErrorStepAfter(*last_, st));
    st = absl::OkStatus();
  }
  steps_->Close(st);
  auto keep = std::move(self_);  // may be the last reference: this goes when the function returns
}

}  // namespace llmesh::gateway
