#include "grpc_service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "agent_run.h"
#include "downstream.h"
#include "embed.h"
#include "llmesh/common/logging.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"
#include "spdlog/spdlog.h"

namespace llmesh::gateway {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const absl::Status& st) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(rpc::ToGrpcStatus(st));
  return reactor;
}

std::string Metadata(const grpc::CallbackServerContext* ctx, const char* key) {
  auto it = ctx->client_metadata().find(key);
  if (it == ctx->client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// The client's request id when it sent a sane one, else a new one.
std::string RequestIdFor(const grpc::CallbackServerContext* ctx) {
  std::string id = Metadata(ctx, rpc::kRequestIdKey);
  if (id.empty() || id.size() > 128) return NewRequestId();
  for (char c : id)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return NewRequestId();
  return id;
}

absl::Time DeadlineFor(const grpc::CallbackServerContext* ctx, absl::Duration cap) {
  absl::Time capped = absl::Now() + cap;
  absl::Time client = absl::FromChrono(ctx->deadline());
  return client < capped ? client : capped;
}

// Generate / Chat: responses from the generation's strand are queued and
// written one at a time; consecutive deltas of one completion are merged
// while a write is in flight, so a slow client never holds up the pipeline.
class StreamReactor : public grpc::ServerWriteReactor<v1::GatewayGenerateResponse> {
 public:
  class Sink : public GenerationSink {
   public:
    explicit Sink(StreamReactor* r) : reactor_(r) {}
    void OnResponse(v1::GatewayGenerateResponse r) override {
      std::unique_lock lock(mu_);
      if (!reactor_ || failed_) return;
      if (!pending_.empty() && pending_.back().index() == r.index() &&
          pending_.back().finish_reason() == v1::FINISH_REASON_UNSPECIFIED) {
        auto& back = pending_.back();
        back.mutable_text_delta()->append(r.text_delta());
        for (auto& t : *r.mutable_tokens()) *back.add_tokens() = std::move(t);
        back.set_finish_reason(r.finish_reason());
        if (r.has_usage()) *back.mutable_usage() = r.usage();
        for (auto& c : *r.mutable_tool_calls()) *back.add_tool_calls() = std::move(c);
        for (auto& id : *r.mutable_cited_chunk_ids()) back.add_cited_chunk_ids(std::move(id));
      } else {
        pending_.push_back(std::move(r));
      }
      Act(Next(), lock);
    }
    void OnFinish(const absl::Status& st) override {
      std::unique_lock lock(mu_);
      final_ = rpc::ToGrpcStatus(st);
      finish_pending_ = true;
      Act(Next(), lock);
    }
    void WriteDone(bool ok) {
      std::unique_lock lock(mu_);
      writing_ = false;
      if (!ok) {
        failed_ = true;
        if (reactor_ && !finished_) {
          finished_ = true;
          final_ = grpc::Status(grpc::StatusCode::CANCELLED, "client stopped reading");
          auto* r = reactor_;
          lock.unlock();
          r->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client stopped reading"));
        }
        return;
      }
      Act(Next(), lock);
    }
    void Detach() {
      std::lock_guard lock(mu_);
      reactor_ = nullptr;
    }
    grpc::StatusCode code() {
      std::lock_guard lock(mu_);
      return final_.error_code();
    }
    // Finishes the RPC right away (before any generation exists).
    void FinishNow(const grpc::Status& st) {
      std::unique_lock lock(mu_);
      final_ = st;
      finished_ = true;
      auto* r = reactor_;
      lock.unlock();
      r->Finish(st);
    }

   private:
    enum class Op { kNone, kWrite, kFinish };
    Op Next() {
      if (!reactor_ || writing_ || finished_) return Op::kNone;
      if (!pending_.empty()) {
        current_ = std::move(pending_.front());
        pending_.pop_front();
        writing_ = true;
        return Op::kWrite;
      }
      if (finish_pending_) {
        finished_ = true;
        return Op::kFinish;
      }
      return Op::kNone;
    }
    // gRPC may run reactions inline: call it without holding mu_.
    void Act(Op op, std::unique_lock<std::mutex>& lock) {
      auto* r = reactor_;
      grpc::Status st = final_;
      lock.unlock();
      if (op == Op::kWrite) r->StartWrite(&current_);
      else if (op == Op::kFinish) r->Finish(st);
    }

    std::mutex mu_;
    StreamReactor* reactor_;
    std::deque<v1::GatewayGenerateResponse> pending_;
    v1::GatewayGenerateResponse current_;
    grpc::Status final_;
    bool writing_ = false, finish_pending_ = false, finished_ = false, failed_ = false;
  };

  StreamReactor(GatewayContext& gw, const char* route) : gw_(gw), route_(route) {
    sink_ = std::make_shared<Sink>(this);
  }
  void Reject(const absl::Status& st) { sink_->FinishNow(rpc::ToGrpcStatus(st)); }
  void Run(GenerateJob job, std::string request_id, absl::Time deadline) {
    std::lock_guard lock(mu_);
    gen_ = Generation::Start(gw_, std::move(job), std::move(request_id), deadline, sink_);
  }

  void OnWriteDone(bool ok) override {
    sink_->WriteDone(ok);
    if (!ok) CancelGeneration();
  }
  void OnCancel() override { CancelGeneration(); }
  void OnDone() override {
    sink_->Detach();
    CancelGeneration();
    gw_.metrics->CountRequest(route_, absl::StatusCodeToString(static_cast<absl::StatusCode>(sink_->code())));
    delete this;
  }

 private:
  void CancelGeneration() {
    std::shared_ptr<Generation> g;
    {
      std::lock_guard lock(mu_);
      g = gen_;
    }
    if (g) g->Cancel();
  }

  GatewayContext& gw_;
  const char* route_;
  std::shared_ptr<Sink> sink_;
  std::mutex mu_;
  std::shared_ptr<Generation> gen_;
};

}  // namespace
}  // namespace llmesh::gateway

namespace llmesh::gateway {

absl::Status GatewayServiceImpl::Authorize(grpc::CallbackServerContext* ctx) const {
  return keys_.Check(Metadata(ctx, "authorization"));
}

grpc::ServerWriteReactor<v1::GatewayGenerateResponse>* GatewayServiceImpl::Stream(grpc::CallbackServerContext* ctx,
                                                                                   GenerateJob job,
                                                                                   const char* route) {
  auto* reactor = new StreamReactor(gw_, route);
  if (auto st = Authorize(ctx); !st.ok()) {
    reactor->Reject(st);
    return reactor;
  }
  reactor->Run(std::move(job), RequestIdFor(ctx), DeadlineFor(ctx, gw_.request_timeout));
  return reactor;
}

grpc::ServerWriteReactor<v1::GatewayGenerateResponse>* GatewayServiceImpl::Generate(
    grpc::CallbackServerContext* ctx, const v1::GatewayGenerateRequest* req) {
  return Stream(ctx, JobFromProto(*req), "grpc:Generate");
}

grpc::ServerWriteReactor<v1::GatewayGenerateResponse>* GatewayServiceImpl::Chat(grpc::CallbackServerContext* ctx,
                                                                               const v1::ChatRequest* req) {
  return Stream(ctx, JobFromProto(*req), "grpc:Chat");
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Embed(grpc::CallbackServerContext* ctx,
                                                    const v1::GatewayEmbedRequest* req,
                                                    v1::GatewayEmbedResponse* resp) {
  if (auto st = Authorize(ctx); !st.ok()) return Done(ctx, st);
  EmbedJob job;
  job.model = req->model().empty() ? gw_.default_model : req->model();
  job.texts.assign(req->inputs().begin(), req->inputs().end());
  job.pooling = req->pooling();
  auto* reactor = ctx->DefaultReactor();
  GatewayMetrics* metrics = gw_.metrics;
  RunEmbed(gw_, std::move(job), RequestIdFor(ctx), DeadlineFor(ctx, gw_.request_timeout),
           [reactor, resp, metrics](absl::StatusOr<v1::GatewayEmbedResponse> r) {
             if (r.ok()) *resp = std::move(*r);
             metrics->CountRequest("grpc:Embed", absl::StatusCodeToString(r.status().code()));
             reactor->Finish(rpc::ToGrpcStatus(r.status()));
           });
  return reactor;
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Tokenize(grpc::CallbackServerContext* ctx,
                                                       const v1::TokenizeRequest* req, v1::TokenizeResponse* resp) {
  if (auto st = Authorize(ctx); !st.ok()) return Done(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::TokenizeRequest req;
  };
  auto call = std::make_shared<Call>();
  call->ctx = rpc::ChildContext(ctx, gw_.request_timeout);
  call->req = *req;
  if (call->req.model().empty()) call->req.set_model(gw_.default_model);
  gw_.tokenizer->async()->Tokenize(call->ctx.get(), &call->req, resp,
                                   [reactor, call](grpc::Status st) { reactor->Finish(st); });
  return reactor;
}

grpc::ServerUnaryReactor* GatewayServiceImpl::ListModels(grpc::CallbackServerContext* ctx,
                                                         const v1::GatewayListModelsRequest*,
                                                         v1::GatewayListModelsResponse* resp) {
  if (auto st = Authorize(ctx); !st.ok()) return Done(ctx, st);
  *resp = ListModelsOf(*gw_.pool);
  return Done(ctx, absl::OkStatus());
}

template <typename Call>
grpc::ServerUnaryReactor* GatewayServiceImpl::ProxyToRag(grpc::CallbackServerContext* ctx, const char* route,
                                                         const char* what, Call call) {
  if (auto st = Authorize(ctx); !st.ok()) return Done(ctx, st);
  if (!gw_.rag) return Done(ctx, absl::UnavailableError("retrieval is not configured on this gateway (set its rag address)"));
  auto* reactor = ctx->DefaultReactor();
  std::shared_ptr<grpc::ClientContext> down = DownstreamContext(ctx, gw_.request_timeout, RequestIdFor(ctx));
  GatewayMetrics* metrics = gw_.metrics;
  call(down.get(), [reactor, down, metrics, route, what](grpc::Status st) {
    absl::Status s = st.ok() ? absl::OkStatus() : DownstreamError(st, what);
    metrics->CountRequest(route, absl::StatusCodeToString(s.code()));
    reactor->Finish(rpc::ToGrpcStatus(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GatewayServiceImpl::CreateCollection(grpc::CallbackServerContext* ctx,
                                                               const v1::CreateCollectionRequest* req,
                                                               v1::Collection* resp) {
  return ProxyToRag(ctx, "grpc:CreateCollection", "rag service (CreateCollection)",
                    [this, req, resp](grpc::ClientContext* down, std::function<void(grpc::Status)> done) {
                      gw_.rag->async()->CreateCollection(down, req, resp, std::move(done));
                    });
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Upsert(grpc::CallbackServerContext* ctx, const v1::UpsertRequest* req,
                                                     v1::UpsertResponse* resp) {
  return ProxyToRag(ctx, "grpc:Upsert", "rag service (Upsert)",
                    [this, req, resp](grpc::ClientContext* down, std::function<void(grpc::Status)> done) {
                      gw_.rag->async()->Upsert(down, req, resp, std::move(done));
                    });
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Query(grpc::CallbackServerContext* ctx, const v1::QueryRequest* req,
                                                    v1::QueryResponse* resp) {
  return ProxyToRag(ctx, "grpc:Query", "rag service (Query)",
                    [this, req, resp](grpc::ClientContext* down, std::function<void(grpc::Status)> done) {
                      gw_.rag->async()->Query(down, req, resp, std::move(done));
                    });
}

grpc::ServerWriteReactor<v1::GatewayGenerateResponse>* GatewayServiceImpl::RagChat(grpc::CallbackServerContext* ctx,
                                                                                  const v1::RagChatRequest* req) {
  return Stream(ctx, JobFromProto(*req), "grpc:RagChat");
}

grpc::ServerWriteReactor<v1::AgentStep>* GatewayServiceImpl::AgentRun(grpc::CallbackServerContext* ctx,
                                                                     const v1::AgentRunRequest* req) {
  return NewAgentRunProxy(gw_, ctx, *req, RequestIdFor(ctx), Authorize(ctx));
}

grpc::ServerUnaryReactor* WorkerRegistryImpl::Register(grpc::CallbackServerContext* ctx,
                                                       const v1::RegisterWorkerRequest* req,
                                                       v1::RegisterWorkerResponse* resp) {
  if (req->address().empty() || req->address().find(':') == std::string::npos || req->address().size() > 256)
    return Done(ctx, absl::InvalidArgumentError("address must be host:port"));
  std::vector<std::string> models(req->models().begin(), req->models().end());
  pool_.table().Register(req->address(), models, absl::Now());
  pool_.Stub(req->address());
  pool_.CheckSoon();
  spdlog::info("event=worker_registered worker={} models={}", req->address(), models.size());
  resp->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(heartbeat_interval_));
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* WorkerRegistryImpl::Heartbeat(grpc::CallbackServerContext* ctx,
                                                        const v1::HeartbeatRequest* req,
                                                        v1::HeartbeatResponse* resp) {
  std::vector<std::string> models(req->models().begin(), req->models().end());
  resp->set_known(pool_.table().Heartbeat(req->address(), models, req->load(), absl::Now()));
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* WorkerRegistryImpl::Deregister(grpc::CallbackServerContext* ctx,
                                                         const v1::DeregisterWorkerRequest* req,
                                                         v1::DeregisterWorkerResponse*) {
  if (pool_.table().Deregister(req->address())) {
    router_.Forget(req->address());
    spdlog::info("event=worker_deregistered worker={}", req->address());
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* WorkerRegistryImpl::ListWorkers(grpc::CallbackServerContext* ctx,
                                                          const v1::ListWorkersRequest*,
                                                          v1::ListWorkersResponse* resp) {
  for (const WorkerState& w : pool_.table().Snapshot()) {
    if (!w.routable()) continue;
    v1::WorkerInfo* info = resp->add_workers();
    info->set_address(w.address);
    for (const auto& m : w.models) info->add_models(m);
  }
  return Done(ctx, absl::OkStatus());
}

}  // namespace llmesh::gateway
