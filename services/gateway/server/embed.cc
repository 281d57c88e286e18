#include "embed.h"

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"

namespace llmesh::gateway {
namespace {

struct EmbedState : std::enable_shared_from_this<EmbedState> {
  GatewayContext* gw;
  EmbedJob job;
  std::string request_id;
  absl::Time deadline;
  std::function<void(absl::StatusOr<v1::GatewayEmbedResponse>)> done;
  std::set<std::string> tried;
  std::unique_ptr<grpc::ClientContext> ctx;
  v1::EmbedRequest req;
  v1::EmbedResponse resp;
  std::string worker;

  void Attempt() {
    auto pick = gw->router->Pick(gw->pool->table().Snapshot(), job.model, {}, tried);
    if (!pick.ok()) return done(tried.empty() ? pick.status()
                                              : absl::UnavailableError(absl::StrCat("every engine worker tried failed: ",
                                                                                    pick.status().message())));
    worker = pick->address;
    tried.insert(worker);
    gw->pool->table().Acquire(worker);
    ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(deadline));
    ctx->AddMetadata(rpc::kRequestIdKey, request_id);
    req.Clear();
    resp.Clear();
    req.set_model(job.model);
    for (const auto& t : job.texts) req.add_texts(t);
    for (const auto& in : job.token_inputs) req.add_inputs()->mutable_token_ids()->Assign(in.begin(), in.end());
    req.set_pooling(job.pooling);
    auto self = shared_from_this();
    auto stub = gw->pool->Stub(worker);
    stub->async()->Embed(ctx.get(), &req, &resp, [self, stub](grpc::Status st) { self->OnDone(st); });
  }

  void OnDone(const grpc::Status& st) {
    gw->pool->table().Release(worker);
    if (st.ok()) {
      v1::GatewayEmbedResponse out;
      out.mutable_embeddings()->Swap(resp.mutable_embeddings());
      out.set_dimension(resp.dimension());
      *out.mutable_usage() = resp.usage();
      return done(std::move(out));
    }
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
      gw->pool->MarkFailed(worker);
      if (static_cast<int>(tried.size()) < gw->max_attempts && absl::Now() < deadline) return Attempt();
    }
    done(rpc::FromGrpcStatus(st));
  }
};

}  // namespace

void RunEmbed(GatewayContext& gw, EmbedJob job, std::string request_id, absl::Time deadline,
              std::function<void(absl::StatusOr<v1::GatewayEmbedResponse>)> done) {
  if (job.texts.empty() && job.token_inputs.empty()) return done(absl::InvalidArgumentError("inputs is empty"));
  for (size_t i = 0; i < job.texts.size(); ++i)
    if (job.texts[i].empty()) return done(absl::InvalidArgumentError(absl::StrCat("inputs[", i, "] is empty")));
  for (const auto& in : job.token_inputs)
    for (int32_t id : in)
      if (id < 0) return done(absl::InvalidArgumentError(absl::StrCat("token id ", id, " is not a valid token id")));
  if (!gw.pool->Knows(job.model))
    return done(absl::NotFoundError(absl::StrCat("model '", job.model, "' is not served by any engine worker")));
  auto st = std::make_shared<EmbedState>();
  st->gw = &gw;
  st->job = std::move(job);
  st->request_id = std::move(request_id);
  st->deadline = deadline;
  st->done = std::move(done);
  st->Attempt();
}

v1::GatewayListModelsResponse ListModelsOf(WorkerPool& pool) {
  v1::GatewayListModelsResponse out;
  auto workers = pool.table().Snapshot();
  for (const auto& [name, info] : pool.Models()) {
    auto* m = out.add_models();
    m->set_name(name);
    int n = 0;
    for (const auto& w : workers)
      if (w.Serves(name) && w.routable()) ++n;
    m->set_workers(n);
    *m->mutable_info() = info;
  }
  return out;
}

}  // namespace llmesh::gateway
