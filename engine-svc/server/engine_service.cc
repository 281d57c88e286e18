#include "engine_service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "llmesh/common/logging.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"
#include "generate_request.h"
#include "proto_convert.h"
#include "spdlog/spdlog.h"

namespace llmesh::engine {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const absl::Status& st) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(rpc::ToGrpcStatus(st));
  return reactor;
}

// Generate: the scheduler pushes tokens from its thread into this buffer; the
// reactor drains it with one write in flight at a time. Tokens that arrive
// while a write is in flight are coalesced into the next message, so a slow
// client never blocks the batch.
class GenerateReactor : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // The part the scheduler holds; it outlives the reactor if need be.
  class Sink : public GenerationSink {
   public:
    Sink(GenerateReactor* reactor, std::shared_ptr<LoadedModel> model, bool logprobs, int32_t n)
        : reactor_(reactor), model_(std::move(model)), logprobs_(logprobs), n_(n), tail_(n, -1) {}

    void OnToken(int32_t index, const SampleResult& token) override {
      std::unique_lock lock(mu_);
      // Append to this completion's unsent message when there is one.
      if (tail_[index] < 0) {
        pending_.emplace_back();
        pending_.back().set_index(index);
        tail_[index] = static_cast<int32_t>(pending_.size()) - 1 + sent_base_;
      }
      auto& msg = pending_[tail_[index] - sent_base_];
      ToProto(token, logprobs_, *model_->tokenizer, msg.add_tokens());
      Action a = NextLocked();
      lock.unlock();
      Act(a);
    }

    void OnFinish(int32_t index, FinishReason reason, const GenerationUsage& u, const std::string& error) override {
      std::unique_lock lock(mu_);
      if (reason == FinishReason::kError && status_.ok()) status_ = absl::InternalError(error);
      if (tail_[index] < 0) {
        pending_.emplace_back();
        pending_.back().set_index(index);
        tail_[index] = static_cast<int32_t>(pending_.size()) - 1 + sent_base_;
      }
      SetFinish(reason, u, &pending_[tail_[index] - sent_base_]);
      tail_[index] = -2;  // finished: nothing more for this index
      ++finished_;
      Action a = NextLocked();
      lock.unlock();
      Act(a);
    }

    // Reactor side.
    void WriteDone(bool ok) {
      std::unique_lock lock(mu_);
      writing_ = false;
      if (!ok) {
        failed_ = true;
        GenerateReactor* r = reactor_;
        lock.unlock();
        if (r) r->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client stopped reading"));
        return;
      }
      Action a = NextLocked();
      lock.unlock();
      Act(a);
    }
    void Detach() {
      std::lock_guard lock(mu_);
      reactor_ = nullptr;
    }
    bool failed() {
      std::lock_guard lock(mu_);
      return failed_;
    }

   private:
    // What to do next, decided under mu_ and done outside it: gRPC may run
    // reactor callbacks (which take mu_) from inside StartWrite/Finish. The
    // reactor cannot be destroyed before our Finish, so using it unlocked is safe.
    struct Action {
      GenerateReactor* reactor = nullptr;
      bool finish = false;
      grpc::Status status;
    };
    Action NextLocked() {
      Action a;
      if (!reactor_ || writing_ || failed_ || finished_sent_) return a;
      if (pending_.empty()) {
        if (finished_ == n_) {
          finished_sent_ = true;
          a = {reactor_, true, rpc::ToGrpcStatus(status_)};
        }
        return a;
      }
      current_ = std::move(pending_.front());
      pending_.pop_front();
      ++sent_base_;
      // The message leaving was the open one for its index: later tokens start a new one.
      if (tail_[current_.index()] >= 0 && tail_[current_.index()] < sent_base_) tail_[current_.index()] = -1;
      writing_ = true;
      a.reactor = reactor_;
      return a;
    }
    void Act(const Action& a) {
      if (!a.reactor) return;
      if (a.finish) a.reactor->Finish(a.status);
      else a.reactor->StartWrite(&current_);
    }

    std::mutex mu_;
    GenerateReactor* reactor_;
    std::shared_ptr<LoadedModel> model_;  // keeps the tokenizer alive
    const bool logprobs_;
    const int32_t n_;
    std::deque<v1::GenerateResponse> pending_;
    std::vector<int32_t> tail_;  // per index: absolute position of its open message, -1 none, -2 finished
    int32_t sent_base_ = 0;      // absolute position of pending_.front()
    v1::GenerateResponse current_;
    bool writing_ = false;
    bool failed_ = false;
    bool finished_sent_ = false;
    int32_t finished_ = 0;
    absl::Status status_;
  };

  GenerateReactor(Engine& engine, const v1::GenerateRequest& req, grpc::CallbackServerContext* ctx) {
    auto prepared = PrepareGeneration(engine, req, rpc::RequestIdOf(*ctx));
    if (!prepared.ok()) {
      Finish(rpc::ToGrpcStatus(prepared.status()));
      return;
    }
    model_ = std::move(prepared->model);
    int32_t n = prepared->request.n;
    sink_ = std::make_shared<Sink>(this, model_, req.logprobs(), n);
    auto id = model_->scheduler->Submit(std::move(prepared->request), sink_);
    if (!id.ok()) {
      sink_->Detach();
      sink_.reset();
      Finish(rpc::ToGrpcStatus(id.status()));
      return;
    }
    request_id_ = *id;
  }

  void OnWriteDone(bool ok) override {
    if (sink_) sink_->WriteDone(ok);
    if (!ok) Cancel();
  }
  // Client cancelled, went away, or its deadline passed: stop the work.
  void OnCancel() override { Cancel(); }
  void OnDone() override {
    if (sink_) sink_->Detach();
    Cancel();
    delete this;
  }

 private:
  void Cancel() {
    if (model_ && request_id_ != 0) model_->scheduler->Cancel(request_id_);
  }

  std::shared_ptr<LoadedModel> model_;
  std::shared_ptr<Sink> sink_;
  Scheduler::RequestId request_id_ = 0;
};

}  // namespace

grpc::ServerUnaryReactor* EngineServiceImpl::LoadModel(grpc::CallbackServerContext* ctx,
                                                       const v1::LoadModelRequest* req, v1::LoadModelResponse* resp) {
  if (req->n_ctx() < 0) return Done(ctx, absl::InvalidArgumentError("n_ctx must be >= 0"));
  absl::Time start = absl::Now();
  auto info = engine_.LoadModel(req->model(), req->n_ctx());
  if (!info.ok()) return Done(ctx, info.status());
  ToProto(*info, resp->mutable_model());
  resp->set_load_ms(absl::ToDoubleMilliseconds(absl::Now() - start));
  if (on_models_changed_) on_models_changed_();
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* EngineServiceImpl::UnloadModel(grpc::CallbackServerContext* ctx,
                                                         const v1::UnloadModelRequest* req,
                                                         v1::UnloadModelResponse*) {
  auto st = engine_.UnloadModel(req->model());
  if (st.ok() && on_models_changed_) on_models_changed_();
  return Done(ctx, st);
}

grpc::ServerUnaryReactor* EngineServiceImpl::ListModels(grpc::CallbackServerContext* ctx,
                                                        const v1::ListModelsRequest* req,
                                                        v1::ListModelsResponse* resp) {
  for (const auto& info : engine_.ListModels(req->include_available())) ToProto(info, resp->add_models());
  return Done(ctx, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::GenerateResponse>* EngineServiceImpl::Generate(grpc::CallbackServerContext* ctx,
                                                                           const v1::GenerateRequest* req) {
  return new GenerateReactor(engine_, *req, ctx);
}

grpc::ServerUnaryReactor* EngineServiceImpl::OpenSession(grpc::CallbackServerContext* ctx,
                                                         const v1::OpenSessionRequest* req,
                                                         v1::OpenSessionResponse* resp) {
  if (req->ttl_ms() < 0) return Done(ctx, absl::InvalidArgumentError("ttl_ms must be >= 0"));
  auto id = engine_.OpenSession(req->model(), absl::Milliseconds(req->ttl_ms()));
  if (!id.ok()) return Done(ctx, id.status());
  resp->set_session_id(*id);
  if (auto lm = engine_.Get(req->model()); lm.ok()) resp->set_n_ctx((*lm)->scheduler->config().n_ctx);
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* EngineServiceImpl::Prefill(grpc::CallbackServerContext* ctx, const v1::PrefillRequest* req,
                                                     v1::PrefillResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  engine_.Prefill(req->session_id(), {req->token_ids().begin(), req->token_ids().end()}, req->top_logprobs(),
                  [reactor, resp](absl::StatusOr<PrefillResult> r) {
                    if (r.ok()) {
                      resp->set_n_past(r->n_past);
                      resp->set_cached_tokens(r->cached_tokens);
                      for (auto& [id, lp] : r->top_logprobs) {
                        auto* t = resp->add_top_logprobs();
                        t->set_token_id(id);
                        t->set_logprob(lp);
                      }
                    }
                    reactor->Finish(rpc::ToGrpcStatus(r.status()));
                  });
  return reactor;
}

grpc::ServerUnaryReactor* EngineServiceImpl::Decode(grpc::CallbackServerContext* ctx, const v1::DecodeRequest* req,
                                                    v1::DecodeResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (req->top_logprobs() < 0 || req->top_logprobs() > 20) {
    reactor->Finish(rpc::ToGrpcStatus(absl::InvalidArgumentError("top_logprobs must be in 0..20")));
    return reactor;
  }
  int32_t n = req->n_tokens() == 0 ? 1 : req->n_tokens();
  std::string session = req->session_id();
  engine_.Decode(session, ToSamplingConfig(req->sampling(), req->top_logprobs()), n,
                 {req->stopping().stop_token_ids().begin(), req->stopping().stop_token_ids().end()},
                 req->stopping().ignore_eos(), [reactor, resp](absl::StatusOr<DecodeResult> r) {
                   if (r.ok()) {
                     for (const auto& t : r->tokens) {
                       auto* g = resp->add_tokens();
                       g->set_token_id(t.token);
                       g->set_logprob(t.logprob);
                       for (const auto& alt : t.top_logprobs) {
                         auto* a = g->add_top_logprobs();
                         a->set_token_id(alt.token);
                         a->set_logprob(alt.logprob);
                       }
                     }
                     resp->set_n_past(r->n_past);
                     resp->set_finish_reason(ToProto(r->finish));
                   }
                   reactor->Finish(rpc::ToGrpcStatus(r.status()));
                 });
  return reactor;
}

grpc::ServerUnaryReactor* EngineServiceImpl::CloseSession(grpc::CallbackServerContext* ctx,
                                                          const v1::CloseSessionRequest* req,
                                                          v1::CloseSessionResponse*) {
  return Done(ctx, engine_.CloseSession(req->session_id()));
}

grpc::ServerUnaryReactor* EngineServiceImpl::Embed(grpc::CallbackServerContext* ctx, const v1::EmbedRequest* req,
                                                   v1::EmbedResponse* resp) {
  embed_requests_.fetch_add(1, std::memory_order_relaxed);
  if (!req->texts().empty() && !req->inputs().empty())
    return Done(ctx, absl::InvalidArgumentError("give texts or inputs, not both"));
  auto lm = engine_.Get(req->model());
  if (!lm.ok()) return Done(ctx, lm.status());
  std::vector<std::vector<TokenId>> inputs;
  for (const auto& text : req->texts()) {
    auto ids = (*lm)->tokenizer->Encode(text, /*add_special=*/true, /*parse_special=*/false);
    if (!ids.ok()) return Done(ctx, ids.status());
    inputs.push_back(std::move(*ids));
  }
  for (const auto& in : req->inputs()) inputs.emplace_back(in.token_ids().begin(), in.token_ids().end());
  auto* reactor = ctx->DefaultReactor();
  engine_.Embed(req->model(), std::move(inputs), ToPooling(req->pooling()),
                [reactor, resp](absl::StatusOr<EmbedResult> r) {
                  if (r.ok()) {
                    int32_t total = 0;
                    for (size_t i = 0; i < r->embeddings.size(); ++i) {
                      auto* e = resp->add_embeddings();
                      e->mutable_values()->Assign(r->embeddings[i].begin(), r->embeddings[i].end());
                      e->set_n_tokens(r->n_tokens[i]);
                      total += r->n_tokens[i];
                    }
                    if (!r->embeddings.empty()) resp->set_dimension(static_cast<int32_t>(r->embeddings[0].size()));
                    resp->mutable_usage()->set_prompt_tokens(total);
                    resp->mutable_usage()->set_total_tokens(total);
                  }
                  reactor->Finish(rpc::ToGrpcStatus(r.status()));
                });
  return reactor;
}

grpc::ServerUnaryReactor* EngineServiceImpl::GetStats(grpc::CallbackServerContext* ctx, const v1::GetStatsRequest*,
                                                      v1::EngineStats* resp) {
  double hit_num = 0, hit_den = 0;
  for (const auto& info : engine_.ListModels(false)) {
    auto lm = engine_.Get(info.name);
    if (!lm.ok()) continue;
    resp->add_models(info.name);
    if (!(*lm)->scheduler) continue;  // an encoder: no KV cache, no decoding
    SchedulerStats s = (*lm)->scheduler->Stats();
    resp->set_queue_depth(resp->queue_depth() + s.queue_depth);
    resp->set_running_sequences(resp->running_sequences() + s.running_sequences);
    resp->set_kv_blocks_used(resp->kv_blocks_used() + s.kv.blocks_used);
    resp->set_kv_blocks_cached(resp->kv_blocks_cached() + s.kv.blocks_cached);
    resp->set_kv_blocks_free(resp->kv_blocks_free() + s.kv.blocks_free);
    resp->set_kv_window_blocks_used(resp->kv_window_blocks_used() + s.kv.window_blocks_used);
    resp->set_kv_window_blocks_total(resp->kv_window_blocks_total() + s.kv.window_blocks_total);
    resp->set_kv_block_size((*lm)->scheduler->config().kv_block_size);
    resp->set_decode_tokens_per_second(resp->decode_tokens_per_second() + s.decode_tokens_per_second);
    resp->set_prefill_tokens_per_second(resp->prefill_tokens_per_second() + s.prefill_tokens_per_second);
    resp->set_requests_total(resp->requests_total() + s.requests_total);
    resp->set_tokens_generated_total(resp->tokens_generated_total() + s.tokens_generated_total);
    hit_num += static_cast<double>(s.kv.prefix_hit_tokens);
    hit_den += static_cast<double>(s.kv.prefix_query_tokens);
  }
  resp->set_prefix_hit_rate(hit_den > 0 ? hit_num / hit_den : 0.0);
  resp->set_open_sessions(engine_.OpenSessions());
  resp->set_embed_requests_total(embed_requests_.load(std::memory_order_relaxed));
  return Done(ctx, absl::OkStatus());
}

}  // namespace llmesh::engine
