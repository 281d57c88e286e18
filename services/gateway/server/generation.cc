#include "generation.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "downstream.h"
#include "llmesh/common/logging.h"
#include "llmesh/gateway/rag_prompt.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"
#include "spdlog/spdlog.h"

namespace llmesh::gateway {

std::string NewRequestId() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
  return absl::StrFormat("%016x", rng());
}

namespace {
absl::Status TokenizerError(const grpc::Status& st, const char* what) {
  absl::Status s = rpc::FromGrpcStatus(st);
  if (absl::IsUnavailable(s) || absl::IsUnknown(s))
    return absl::UnavailableError(absl::StrCat("tokenizer service unavailable (", what, "): ", s.message()));
  return s;
}
}  // namespace

// The engine's Generate stream for one call. Deletes itself when done.
class Generation::EngineCall : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  EngineCall(std::shared_ptr<Generation> gen, int call, std::shared_ptr<grpc::ClientContext> ctx,
             std::shared_ptr<v1::EngineService::Stub> stub, v1::GenerateRequest req)
      : gen_(std::move(gen)), call_(call), ctx_(std::move(ctx)), stub_(std::move(stub)), req_(std::move(req)) {
    stub_->async()->Generate(ctx_.get(), &req_, this);
    StartRead(&resp_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    // Post before the next read so messages reach the strand in order.
    auto g = gen_;
    int c = call_;
    g->Post([g, c, m = std::move(resp_)]() mutable { g->OnEngineMessage(c, std::move(m)); });
    resp_.Clear();
    StartRead(&resp_);
  }
  void OnDone(const grpc::Status& s) override {
    auto g = std::move(gen_);
    int c = call_;
    grpc::Status st = s;
    delete this;
    g->Post([g, c, st] { g->OnEngineDone(c, st); });
  }

 private:
  std::shared_ptr<Generation> gen_;
  int call_;
  std::shared_ptr<grpc::ClientContext> ctx_;
  std::shared_ptr<v1::EngineService::Stub> stub_;
  v1::GenerateRequest req_;
  v1::GenerateResponse resp_;
};

// One call's events over the worker's GenerateMux stream, onto the strand.
class Generation::MuxListener : public EngineMux::Listener {
 public:
  MuxListener(std::shared_ptr<Generation> gen, int call) : gen_(std::move(gen)), call_(call) {}
  void OnMessage(v1::GenerateResponse msg) override {
    auto g = gen_;
    int c = call_;
    g->Post([g, c, m = std::move(msg)]() mutable { g->OnEngineMessage(c, std::move(m)); });
  }
  void OnDone(const grpc::Status& status) override {
    auto g = gen_;
    int c = call_;
    g->Post([g, c, status] { g->OnEngineDone(c, status); });
  }

 private:
  std::shared_ptr<Generation> gen_;
  int call_;
};

// tokenizer-svc DetokenizeStream for one completion. A hold keeps it alive
// until the strand has issued its last write (Release), so Write/WritesDone
// are always safe to call before that. Deletes itself when done.
class Generation::DetokCall
    : public grpc::ClientBidiReactor<v1::DetokenizeStreamRequest, v1::DetokenizeStreamResponse> {
 public:
  DetokCall(std::shared_ptr<Generation> gen, int index, std::shared_ptr<grpc::ClientContext> ctx,
            std::shared_ptr<v1::TokenizerService::Stub> stub, std::string model)
      : gen_(std::move(gen)), index_(index), ctx_(std::move(ctx)), stub_(std::move(stub)), model_(std::move(model)) {
    stub_->async()->DetokenizeStream(ctx_.get(), this);
    AddHold();
    StartRead(&resp_);
    StartCall();
  }
  // Strand only, one write in flight.
  void Write(const std::vector<v1::GeneratedToken>& tokens) {
    req_.Clear();
    if (first_) {
      req_.set_model(model_);
      req_.set_skip_special(true);
      first_ = false;
    }
    for (const auto& t : tokens) req_.add_token_ids(t.token_id());
    StartWrite(&req_);
  }
  void WritesDone() { StartWritesDone(); }
  void Release() { RemoveHold(); }

  void OnWriteDone(bool ok) override {
    auto g = gen_;
    int i = index_;
    g->Post([g, i, ok] { g->OnDetokWriteDone(i, ok); });
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    auto g = gen_;
    int i = index_;
    g->Post([g, i, d = std::move(*resp_.mutable_text_delta())]() mutable { g->OnDetokDelta(i, std::move(d)); });
    resp_.Clear();
    StartRead(&resp_);
  }
  void OnDone(const grpc::Status& s) override {
    auto g = std::move(gen_);
    int i = index_;
    grpc::Status st = s;
    delete this;
    g->Post([g, i, st] { g->OnDetokDone(i, st); });
  }

 private:
  std::shared_ptr<Generation> gen_;
  int index_;
  std::shared_ptr<grpc::ClientContext> ctx_;
  std::shared_ptr<v1::TokenizerService::Stub> stub_;
  std::string model_;
  bool first_ = true;
  v1::DetokenizeStreamRequest req_;
  v1::DetokenizeStreamResponse resp_;
};

Generation::Generation(GatewayContext& gw, GenerateJob job, std::string request_id, absl::Time deadline,
                       std::shared_ptr<GenerationSink> sink)
    : gw_(gw),
      job_(std::move(job)),
      request_id_(std::move(request_id)),
      deadline_(deadline),
      arrival_(absl::Now()),
      sink_(std::move(sink)) {}

Generation::~Generation() = default;

std::shared_ptr<Generation> Generation::Start(GatewayContext& gw, GenerateJob job, std::string request_id,
                                              absl::Time deadline, std::shared_ptr<GenerationSink> sink) {
  std::shared_ptr<Generation> g(new Generation(gw, std::move(job), std::move(request_id), deadline, std::move(sink)));
  g->Post([g] { g->Begin(); });
  return g;
}

void Generation::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(strand_mu_);
    strand_.push_back(std::move(fn));
    if (draining_) return;
    draining_ = true;
  }
  while (true) {
    std::function<void()> next;
    {
      std::lock_guard lock(strand_mu_);
      if (strand_.empty()) {
        draining_ = false;
        return;
      }
      next = std::move(strand_.front());
      strand_.pop_front();
    }
    next();
  }
}

void Generation::Cancel() {
  auto self = shared_from_this();
  Post([self] {
    if (self->finished_) return;
    self->cancelled_ = true;
    self->FinishAll(absl::CancelledError("the client cancelled the request"));
  });
}

std::unique_ptr<grpc::ClientContext> Generation::NewContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(deadline_));
  ctx->AddMetadata(rpc::kRequestIdKey, request_id_);
  return ctx;
}

void Generation::Begin() {
  if (finished_) return;
  if (job_.model.empty()) job_.model = gw_.default_model;
  if (job_.model.empty()) return FinishAll(absl::InvalidArgumentError("model is required (no default model is configured)"));
  if (auto st = ValidateJob(job_, gw_.limits); !st.ok()) return FinishAll(st);
  if (auto st = ApplyTools(&job_); !st.ok()) return FinishAll(st);
  if (!gw_.pool->Knows(job_.model))
    return FinishAll(absl::NotFoundError(
        absl::StrCat("model '", job_.model, "' is not served by any engine worker (GET /v1/models lists them)")));
  auto models = gw_.pool->Models();
  auto it = models.find(job_.model);
  if (it != models.end() && it->second.n_ctx() > 0 && job_.stopping.max_tokens() > it->second.n_ctx())
    return FinishAll(absl::InvalidArgumentError(absl::StrCat("max_tokens (", job_.stopping.max_tokens(),
                                                             ") exceeds the context window of model '", job_.model,
                                                             "' (", it->second.n_ctx(), " tokens)")));
  auto self = shared_from_this();
  absl::Status st = gw_.admission->Submit(
      deadline_, [self](absl::Status s) { self->Post([self, s] { self->OnAdmitted(s); }); }, &ticket_);
  if (!st.ok()) FinishAll(st);
}

void Generation::OnAdmitted(absl::Status status) {
  if (status.ok() && finished_) {
    gw_.admission->Release();  // admitted after it was cancelled
    return;
  }
  if (finished_) return;
  if (!status.ok()) return FinishAll(status);
  admitted_ = true;
  if (job_.retrieval) return Retrieve();
  ResolvePrompt();
}

// RagChat: the last user message searches the collection; the chunks found
// join the system message before the template renders the chat.
void Generation::Retrieve() {
  if (!gw_.rag) return FinishAll(absl::UnavailableError("retrieval is not configured on this gateway (set its rag address)"));
  struct Call {
    std::shared_ptr<grpc::ClientContext> ctx;
    v1::QueryRequest req;
    v1::QueryResponse resp;
  };
  auto self = shared_from_this();
  auto call = std::make_shared<Call>();
  call->ctx = NewContext();
  rag_ctx_ = call->ctx;
  const RetrievalSpec& spec = *job_.retrieval;
  call->req.set_collection(spec.collection);
  call->req.set_query(RetrievalQueryOf(job_));
  call->req.set_top_k(spec.top_k);
  call->req.set_mode(spec.mode);
  for (const auto& f : spec.filters) *call->req.add_filters() = f;
  gw_.rag->async()->Query(call->ctx.get(), &call->req, &call->resp, [self, call](grpc::Status st) {
    self->Post([self, call, st] { self->OnRetrieved(st, call->resp); });
  });
}

void Generation::OnRetrieved(const grpc::Status& status, const v1::QueryResponse& resp) {
  rag_ctx_.reset();
  if (finished_) return;
  if (!status.ok()) return FinishAll(DownstreamError(status, "rag service (Query)"));
  std::vector<v1::QueryResult> results(resp.results().begin(), resp.results().end());
  cited_ = AugmentWithContext(job_.retrieval->collection, results, &job_.messages);
  spdlog::debug("event=retrieved request_id={} collection={} chunks={}", request_id_, job_.retrieval->collection,
                results.size());
  ResolvePrompt();
}

void Generation::ResolvePrompt() {
  auto self = shared_from_this();
  switch (job_.input) {
    case GenerateJob::Input::kTokenIds:
      OnPrompt(job_.prompt_ids);
      return;
    case GenerateJob::Input::kText: {
      struct Call {
        std::unique_ptr<grpc::ClientContext> ctx;
        v1::TokenizeRequest req;
        v1::TokenizeResponse resp;
      };
      auto call = std::make_shared<Call>();
      call->ctx = NewContext();
      call->req.set_model(job_.model);
      call->req.set_text(job_.prompt);
      call->req.set_add_special(true);
      gw_.tokenizer->async()->Tokenize(call->ctx.get(), &call->req, &call->resp,
                                       [self, call](grpc::Status st) {
                                         self->Post([self, call, st] {
                                           if (!st.ok()) return self->OnPrompt(TokenizerError(st, "Tokenize"));
                                           self->OnPrompt(std::vector<int32_t>(call->resp.token_ids().begin(),
                                                                               call->resp.token_ids().end()));
                                         });
                                       });
      return;
    }
    case GenerateJob::Input::kChat: {
      std::string tmpl = job_.template_name;
      if (tmpl.empty()) {
        std::lock_guard lock(gw_.mu);
        if (gw_.no_template.count(job_.model)) tmpl = gw_.chat_template_fallback;
      }
      ApplyTemplate(tmpl);
      return;
    }
  }
}

// Renders the chat with the model's template (or `tmpl`). A model without a
// template of its own gets the configured fallback family, remembered per model.
void Generation::ApplyTemplate(const std::string& tmpl) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::ApplyChatTemplateRequest req;
    v1::ApplyChatTemplateResponse resp;
  };
  auto self = shared_from_this();
  auto call = std::make_shared<Call>();
  call->ctx = NewContext();
  call->req.set_model(job_.model);
  for (const auto& m : job_.messages) *call->req.add_messages() = m;
  call->req.set_add_generation_prompt(true);
  call->req.set_tokenize(true);
  call->req.set_template_name(tmpl);
  bool can_fall_back = tmpl.empty() && !gw_.chat_template_fallback.empty();
  gw_.tokenizer->async()->ApplyChatTemplate(
      call->ctx.get(), &call->req, &call->resp, [self, call, can_fall_back](grpc::Status st) {
        self->Post([self, call, st, can_fall_back] {
          if (self->finished_) return;
          if (!st.ok() && can_fall_back && st.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
              st.error_message().find("no chat template") != std::string::npos) {
            {
              std::lock_guard lock(self->gw_.mu);
              self->gw_.no_template.insert(self->job_.model);
            }
            spdlog::info("event=chat_template_fallback model={} template={}", self->job_.model,
                         self->gw_.chat_template_fallback);
            return self->ApplyTemplate(self->gw_.chat_template_fallback);
          }
          if (!st.ok()) return self->OnPrompt(TokenizerError(st, "ApplyChatTemplate"));
          self->OnPrompt(std::vector<int32_t>(call->resp.token_ids().begin(), call->resp.token_ids().end()));
        });
      });
}

void Generation::OnPrompt(absl::StatusOr<std::vector<int32_t>> ids) {
  if (finished_) return;
  if (!ids.ok()) return FinishAll(ids.status());
  if (ids->empty()) return FinishAll(absl::InvalidArgumentError("prompt is empty"));
  prompt_ = std::move(*ids);
  completions_.resize(job_.n);
  StartDetokenizers();
  StartAttempt();
}

void Generation::StartDetokenizers() {
  std::vector<std::string> stops(job_.stopping.stop().begin(), job_.stopping.stop().end());
  std::shared_ptr<const tokenizer::Tokenizer> vocab;
  if (gw_.local_vocab) {
    auto tok = gw_.local_vocab->Get(job_.model);
    if (tok.ok()) vocab = *tok;  // else: not in the local directory, use the tokenizer service
  }
  for (int i = 0; i < job_.n; ++i) {
    Completion& c = completions_[i];
    c.stop = std::make_unique<StopMatcher>(stops);
    if (job_.tool_mode != ToolMode::kNone) c.tools = std::make_unique<ToolCallFilter>(job_.tool_mode, job_.tool_names);
    if (vocab) {
      tokenizer::DecodeOptions opts;
      opts.skip_special = true;
      c.local_tok = vocab;
      c.local = std::make_unique<tokenizer::StreamingDetokenizer>(*vocab, opts);
      continue;
    }
    c.detok_ctx = NewContext();
    c.detok = new DetokCall(shared_from_this(), i, c.detok_ctx, gw_.tokenizer, job_.model);
  }
}

void Generation::StartAttempt() {
  if (finished_) return;
  auto pick = gw_.router->Pick(gw_.pool->table().Snapshot(), job_.model, prompt_, tried_);
  if (!pick.ok()) {
    if (!tried_.empty())
      return FinishAll(absl::UnavailableError(
          absl::StrCat("every engine worker tried for this request failed (", tried_.size(), " tried): ",
                       pick.status().message())));
    return FinishAll(pick.status());
  }
  worker_ = pick->address;
  tried_.insert(worker_);
  ++attempt_;
  gw_.pool->table().Acquire(worker_);
  worker_acquired_ = true;
  got_first_token_ = false;

  v1::GenerateRequest req;
  req.set_model(job_.model);
  req.mutable_prompt_token_ids()->Assign(prompt_.begin(), prompt_.end());
  *req.mutable_sampling() = job_.sampling;
  *req.mutable_stopping() = job_.stopping;
  req.mutable_stopping()->clear_stop();  // matched here, on text
  req.set_overflow(v1::OVERFLOW_POLICY_TRUNCATE_OUTPUT);
  req.set_top_logprobs(job_.top_logprobs);
  req.set_logprobs(job_.logprobs);
  req.set_n(job_.n);
  req.set_request_id(request_id_);
  engine_req_ = std::move(req);
  spdlog::debug("event=route request_id={} worker={} attempt={} affinity={} affinity_tokens={}", request_id_,
                worker_, attempt_, pick->affinity, pick->affinity_tokens);
  StartEngineCall(/*try_mux=*/true);
}

void Generation::StartEngineCall(bool try_mux) {
  ++call_;
  mux_.reset();
  engine_ctx_.reset();
  if (try_mux) {
    if (auto mux = gw_.pool->Mux(worker_)) {
      auto id = mux->Start(engine_req_, deadline_, std::make_shared<MuxListener>(shared_from_this(), call_));
      if (id.ok()) {
        mux_ = std::move(mux);
        mux_id_ = *id;
        return;
      }
    }
  }
  engine_ctx_ = NewContext();
  new EngineCall(shared_from_this(), call_, engine_ctx_, gw_.pool->Stub(worker_), engine_req_);
}

void Generation::OnEngineMessage(int call, v1::GenerateResponse msg) {
  if (finished_ || call != call_) return;
  int i = msg.index();
  if (i < 0 || i >= static_cast<int>(completions_.size())) return;
  got_first_token_ = true;
  Completion& c = completions_[i];
  if (c.done) return;
  for (auto& t : *msg.mutable_tokens()) c.unsent.push_back(std::move(t));
  if (msg.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
    c.engine_finished = true;
    c.finish = msg.finish_reason();
    c.usage = msg.usage();
    cached_prompt_tokens_ = msg.usage().cached_prompt_tokens();
  }
  PumpDetok(i);
}

void Generation::OnEngineDone(int call, grpc::Status status) {
  if (call != call_) return;
  if (mux_ && status.error_code() == grpc::StatusCode::UNIMPLEMENTED && !got_first_token_ && !finished_)
    return StartEngineCall(/*try_mux=*/false);  // an engine without GenerateMux: the same attempt over Generate
  if (worker_acquired_) {
    gw_.pool->table().Release(worker_);
    worker_acquired_ = false;
  }
  if (finished_) return;
  if (status.ok()) {
    for (int i = 0; i < static_cast<int>(completions_.size()); ++i) {
      Completion& c = completions_[i];
      if (!c.engine_finished) {
        c.engine_finished = true;
        c.finish = v1::FINISH_REASON_STOP;
      }
      PumpDetok(i);
    }
    return;
  }
  auto code = status.error_code();
  if (code == grpc::StatusCode::DEADLINE_EXCEEDED || absl::Now() >= deadline_)
    return FinishAll(absl::DeadlineExceededError("the request's deadline expired before generation finished"));
  bool worker_fault = code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::INTERNAL ||
                      code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::ABORTED;
  if (!got_first_token_) {
    bool retry = code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                 code == grpc::StatusCode::ABORTED;
    if (code == grpc::StatusCode::UNAVAILABLE) gw_.pool->MarkFailed(worker_);
    if (retry && attempt_ < gw_.max_attempts) {
      spdlog::info("event=retry request_id={} worker={} code={} error=\"{}\"", request_id_, worker_,
                   static_cast<int>(code), status.error_message());
      return StartAttempt();
    }
    if (retry)
      return FinishAll(absl::Status(rpc::FromGrpcStatus(status).code(),
                                    absl::StrCat("engine worker ", worker_, ": ", status.error_message())));
    return FinishAll(rpc::FromGrpcStatus(status));
  }
  if (worker_fault) gw_.pool->MarkFailed(worker_);
  FinishAll(absl::UnavailableError(absl::StrCat("engine worker ", worker_, " failed mid-stream: ",
                                                status.error_message(), " (partial output was sent)")));
}

void Generation::PumpLocal(int index) {
  Completion& c = completions_[index];
  if (c.done || finished_) return;
  if (!c.unsent.empty()) {
    std::string delta;
    for (const auto& t : c.unsent) {
      auto piece = c.local->Push(t.token_id());
      if (!piece.ok())
        return FinishAll(absl::InternalError(absl::StrCat("engine sent token ", t.token_id(), ": ", piece.status().message())));
      delta += *piece;
    }
    std::vector<v1::GeneratedToken> tokens = std::move(c.unsent);
    c.unsent.clear();
    DeliverDelta(index, std::move(tokens), std::move(delta));
    if (c.done || finished_) return;
  }
  if (c.engine_finished) {
    std::string held = c.local->Flush();
    if (!held.empty()) DeliverDelta(index, {}, std::move(held));
    if (c.done || finished_) return;
    CompleteIndex(index, c.finish, c.stop->Flush());
  }
}

void Generation::PumpDetok(int index) {
  Completion& c = completions_[index];
  if (c.local) return PumpLocal(index);
  if (!c.detok || c.writing || c.done) return;
  if (!c.unsent.empty()) {
    c.in_flight.push_back(std::move(c.unsent));
    c.unsent.clear();
    c.writing = true;
    c.detok->Write(c.in_flight.back());
    return;
  }
  if (c.engine_finished && !c.writes_done) {
    c.writes_done = true;
    c.detok->WritesDone();
    ReleaseDetok(c);
  }
}

void Generation::ReleaseDetok(Completion& c) {
  if (!c.detok) return;
  c.detok->Release();
  c.detok = nullptr;
}

void Generation::OnDetokWriteDone(int index, bool ok) {
  if (index < 0 || index >= static_cast<int>(completions_.size())) return;
  Completion& c = completions_[index];
  c.writing = false;
  if (!ok) {
    ReleaseDetok(c);  // the stream failed; OnDetokDone reports it
    return;
  }
  if (!finished_) PumpDetok(index);
}

void Generation::OnDetokDelta(int index, std::string delta) {
  if (finished_ || index < 0 || index >= static_cast<int>(completions_.size())) return;
  Completion& c = completions_[index];
  if (c.done) return;
  std::vector<v1::GeneratedToken> tokens;
  if (!c.in_flight.empty()) {
    tokens = std::move(c.in_flight.front());
    c.in_flight.pop_front();
  }
  DeliverDelta(index, std::move(tokens), std::move(delta));
}

void Generation::DeliverDelta(int index, std::vector<v1::GeneratedToken> tokens, std::string delta) {
  Completion& c = completions_[index];
  StopMatcher::Result r = c.stop->Push(delta);
  c.tokens_out += static_cast<int32_t>(tokens.size());
  std::string text = std::move(r.text);
  if (c.tools) {
    text = c.tools->Push(text);
    if (c.tools->holding()) {  // (maybe) a call: its tokens go out with it at the end
      for (auto& t : tokens) c.held.push_back(std::move(t));
      tokens.clear();
    } else if (!c.held.empty()) {
      tokens.insert(tokens.begin(), std::make_move_iterator(c.held.begin()), std::make_move_iterator(c.held.end()));
      c.held.clear();
    }
  }
  int n_tokens = static_cast<int>(tokens.size());
  if (!text.empty() || n_tokens > 0) {
    v1::GatewayGenerateResponse out;
    out.set_index(index);
    out.set_text_delta(std::move(text));
    for (auto& t : tokens) *out.add_tokens() = std::move(t);
    Emit(std::move(out), n_tokens);
  }
  if (r.stopped) {
    if (c.detok_ctx) c.detok_ctx->TryCancel();
    ReleaseDetok(c);
    CompleteIndex(index, v1::FINISH_REASON_STOP, "");
  }
}

void Generation::OnDetokDone(int index, grpc::Status status) {
  if (finished_ || index < 0 || index >= static_cast<int>(completions_.size())) return;
  Completion& c = completions_[index];
  if (c.done) return;
  if (!status.ok())
    return FinishAll(absl::UnavailableError(absl::StrCat("tokenizer service (DetokenizeStream): ",
                                                         status.error_message())));
  if (!c.engine_finished)
    return FinishAll(absl::InternalError("the tokenizer ended the detokenization stream early"));
  CompleteIndex(index, c.finish, c.stop->Flush());
}

void Generation::CompleteIndex(int index, v1::FinishReason reason, const std::string& tail) {
  Completion& c = completions_[index];
  c.done = true;
  v1::GatewayGenerateResponse out;
  out.set_index(index);
  out.set_text_delta(tail);
  if (c.tools) {
    ToolCallFilter::Final fin = c.tools->Finish(tail);
    out.set_text_delta(std::move(fin.text));
    if (fin.call) {
      fin.call->set_id(absl::StrCat("call_", request_id_, "_", index));
      *out.add_tool_calls() = std::move(*fin.call);
      reason = v1::FINISH_REASON_TOOL_CALLS;
    }
  }
  int n_held = static_cast<int>(c.held.size());
  for (auto& t : c.held) *out.add_tokens() = std::move(t);
  c.held.clear();
  for (const auto& id : cited_) out.add_cited_chunk_ids(id);
  out.set_finish_reason(reason == v1::FINISH_REASON_UNSPECIFIED ? v1::FINISH_REASON_STOP : reason);
  auto* u = out.mutable_usage();
  u->set_prompt_tokens(static_cast<int32_t>(prompt_.size()));
  int32_t completion = c.engine_finished && c.usage.completion_tokens() > 0 && reason != v1::FINISH_REASON_STOP
                           ? c.usage.completion_tokens()
                           : c.tokens_out;
  if (c.engine_finished && c.usage.completion_tokens() > 0 && c.stop->empty()) completion = c.usage.completion_tokens();
  u->set_completion_tokens(completion);
  u->set_total_tokens(u->prompt_tokens() + completion);
  u->set_cached_prompt_tokens(cached_prompt_tokens_);
  Emit(std::move(out), n_held);
  for (const auto& other : completions_)
    if (!other.done) return;
  FinishAll(absl::OkStatus());
}

void Generation::Emit(v1::GatewayGenerateResponse r, int n_tokens) {
  if (finished_ || !sink_) return;
  absl::Time now = absl::Now();
  if (n_tokens > 0) {
    if (last_emit_ == absl::InfinitePast()) {
      gw_.metrics->ObserveTtft(absl::ToDoubleSeconds(now - arrival_));
    } else {
      double per = absl::ToDoubleSeconds(now - last_emit_) / n_tokens;
      for (int k = 0; k < n_tokens; ++k) gw_.metrics->ObserveInterToken(per);
    }
    last_emit_ = now;
    completion_tokens_total_ += n_tokens;
  }
  r.set_request_id(request_id_);
  sink_->OnResponse(std::move(r));
}

void Generation::FinishAll(absl::Status status) {
  if (finished_) return;
  finished_ = true;
  if (engine_ctx_) engine_ctx_->TryCancel();  // frees the engine sequence if still running
  if (mux_) mux_->Cancel(mux_id_);            // the same over GenerateMux (a no-op once it ended)
  if (rag_ctx_) rag_ctx_->TryCancel();
  for (auto& c : completions_) {
    if (c.detok_ctx && !c.done && !status.ok()) c.detok_ctx->TryCancel();
    ReleaseDetok(c);
  }
  if (worker_acquired_) {
    gw_.pool->table().Release(worker_);
    worker_acquired_ = false;
  }
  if (admitted_) gw_.admission->Release();
  else if (ticket_ != 0) gw_.admission->Cancel(ticket_);
  double secs = absl::ToDoubleSeconds(absl::Now() - arrival_);
  if (status.ok()) {
    gw_.metrics->ObserveRequestDuration(secs);
    gw_.metrics->AddTokens(static_cast<int64_t>(prompt_.size()), completion_tokens_total_);
  }
  spdlog::debug(
      "event=generation request_id={} model={} worker={} attempts={} status={} prompt_tokens={} "
      "completion_tokens={} duration_ms={:.1f} user=\"{}\" error=\"{}\"",
      request_id_, job_.model, worker_, attempt_, absl::StatusCodeToString(status.code()), prompt_.size(),
      completion_tokens_total_, secs * 1000, job_.user, status.message());
  auto sink = std::move(sink_);
  if (sink) sink->OnFinish(status);
}

}  // namespace llmesh::gateway
