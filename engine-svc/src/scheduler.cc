#include "llmesh/engine/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "llmesh/common/logging.h"
#include "llmesh/engine/grammar.h"
#include "llmesh/tokenizer/tokenizer.h"
#include "spdlog/spdlog.h"

namespace llmesh::engine {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "?";
}

namespace {
double NowSeconds() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }
double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }
constexpr double kRateWindowSeconds = 5.0;
}  // namespace

struct Scheduler::Request {
  RequestId id = 0;
  GenerationRequest req;
  std::shared_ptr<GenerationSink> sink;
  absl::Time submitted;
  bool forked = false;  // n > 1: completions 1..n-1 exist
};

// One completion being generated: the unit of batching, KV ownership and preemption.
struct Scheduler::Sequence {
  std::shared_ptr<Request> request;
  int32_t index = 0;              // completion index within the request
  SeqId seq = -1;
  std::vector<TokenId> tokens;    // prompt + generated so far
  int32_t n_prompt = 0;
  int32_t n_computed = 0;         // positions whose K/V are in the cache
  int32_t n_generated = 0;
  int32_t cached_prompt = 0;
  std::unique_ptr<Sampler> sampler;
  absl::Time admitted = absl::InfinitePast();
  absl::Time first_token = absl::InfinitePast();
  uint64_t admit_order = 0;       // larger = younger (preempted first)

  int32_t pending() const { return static_cast<int32_t>(tokens.size()) - n_computed; }
};

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const Model& model, ThreadPool& pool,
                                                            SchedulerConfig config, std::mutex* compute_mu) {
  const auto& hp = model.params();
  if (config.n_ctx <= 0 || config.n_ctx > hp.n_ctx_train) config.n_ctx = static_cast<int32_t>(hp.n_ctx_train);
  if (config.max_seqs < 1) return absl::InvalidArgumentError("max_seqs must be >= 1");
  if (config.max_batch_tokens < config.max_seqs)
    return absl::InvalidArgumentError("max_batch_tokens must be >= max_seqs (one decode token per sequence)");
  if (config.kv_block_size < 1) return absl::InvalidArgumentError("kv_block_size must be >= 1");
  std::unique_ptr<Scheduler> s(new Scheduler(model, pool, config, compute_mu));
  auto kv = MakeModelKvCache(model, config.n_ctx, config.kv_budget_bytes, config.kv_block_size, config.max_seqs,
                             config.max_batch_tokens);
  if (!kv.ok()) return kv.status();
  s->kv_ = std::move(*kv);
  // End-of-generation tokens come from the model's own vocabulary.
  auto tok = tokenizer::Tokenizer::FromGguf(model.file());
  if (!tok.ok()) return tok.status();
  s->is_eog_.assign(hp.n_vocab, 0);
  for (int32_t id = 0; id < hp.n_vocab && id < (*tok)->n_vocab(); ++id) s->is_eog_[id] = (*tok)->is_eog(id);
  s->token_pieces_ = TokenPieces::FromTokenizer(**tok, static_cast<int32_t>(hp.n_vocab));
  s->loop_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

Scheduler::Scheduler(const Model& model, ThreadPool& pool, SchedulerConfig config, std::mutex* compute_mu)
    : model_(model),
      config_(config),
      compute_mu_(compute_mu),
      ctx_(std::make_unique<ForwardContext>(model, pool, config.max_batch_tokens)) {}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
}

absl::StatusOr<Scheduler::RequestId> Scheduler::Submit(GenerationRequest request,
                                                      std::shared_ptr<GenerationSink> sink) {
  const int64_t n_vocab = model_.params().n_vocab;
  if (request.prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    if (request.prompt[i] < 0 || request.prompt[i] >= n_vocab)
      return absl::InvalidArgumentError(absl::StrCat("prompt token [", i, "] = ", request.prompt[i],
                                                     " is outside the vocabulary [0, ", n_vocab, ")"));
  }
  const int32_t n_prompt = static_cast<int32_t>(request.prompt.size());
  if (n_prompt >= config_.n_ctx)
    return absl::InvalidArgumentError(absl::StrCat("prompt has ", n_prompt, " tokens; the context holds ",
                                                   config_.n_ctx, " (prompt plus at least one generated token)"));
  if (request.max_tokens < 0) return absl::InvalidArgumentError("max_tokens must be >= 0");
  if (request.reject_overflow && request.max_tokens > 0 && n_prompt + request.max_tokens > config_.n_ctx)
    return absl::InvalidArgumentError(absl::StrCat("prompt (", n_prompt, " tokens) + max_tokens (", request.max_tokens,
                                                   ") exceeds the context of ", config_.n_ctx, " tokens"));
  if (request.n < 1 || request.n > 16) return absl::InvalidArgumentError("n must be in 1..16");
  if (request.n > config_.max_seqs)
    return absl::InvalidArgumentError(absl::StrCat("n = ", request.n, " exceeds max_seqs = ", config_.max_seqs));
  for (TokenId t : request.stop_token_ids) {
    if (t < 0 || t >= n_vocab) return absl::InvalidArgumentError(absl::StrCat("stop token id ", t, " is outside the vocabulary"));
  }
  if (auto st = ValidateSamplingConfig(request.sampling, static_cast<int32_t>(n_vocab)); !st.ok()) return st;

  auto r = std::make_shared<Request>();
  r->req = std::move(request);
  r->sink = std::move(sink);
  r->submitted = absl::Now();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return absl::UnavailableError("engine is shutting down");
    if (static_cast<int32_t>(queue_.size()) >= config_.max_queue)
      return absl::ResourceExhaustedError(absl::StrCat("engine queue is full (", config_.max_queue, " waiting)"));
    r->id = next_request_id_++;
    queue_.push_back(r);
    ++stats_.requests_total;
  }
  cv_.notify_all();
  return r->id;
}

void Scheduler::Cancel(RequestId id) {
  {
    std::lock_guard lock(mu_);
    cancelled_.insert(id);
  }
  cv_.notify_all();
}

void Scheduler::Post(std::function<void(ForwardContext&, ModelKvCache&)> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
}

SeqId Scheduler::AllocateSeqId() {
  std::lock_guard lock(mu_);
  if (!free_seq_ids_.empty()) {
    SeqId id = free_seq_ids_.back();
    free_seq_ids_.pop_back();
    return id;
  }
  return next_seq_id_++;
}

void Scheduler::ReleaseSeqId(SeqId id) {
  std::lock_guard lock(mu_);
  free_seq_ids_.push_back(id);
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Scheduler::Loop() {
  while (true) {
    std::vector<std::function<void(ForwardContext&, ModelKvCache&)>> tasks;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || !queue_.empty() || !tasks_.empty() || !running_.empty() || !preempted_.empty() ||
               !cancelled_.empty();
      });
      if (stopping_) break;
      tasks.swap(tasks_);
    }
    if (!tasks.empty()) {
      std::unique_lock<std::mutex> compute;
      if (compute_mu_) compute = std::unique_lock(*compute_mu_);
      for (auto& t : tasks) t(*ctx_, *kv_);
    }
    DropCancelled();
    Admit();
    bool progressed = Step();
    UpdateStats();
    if (!progressed) {
      // Nothing could run (e.g. prompts waiting for KV room): sleep until
      // something changes instead of spinning.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
  }
  // Shutdown: everyone still here is told, nobody hangs.
  for (auto& seq : running_) {
    seq->request->sink->OnFinish(seq->index, FinishReason::kCancelled, {}, "engine shutting down");
  }
  running_.clear();
  for (auto& seq : preempted_) {
    seq->request->sink->OnFinish(seq->index, FinishReason::kCancelled, {}, "engine shutting down");
  }
  preempted_.clear();
  std::deque<std::shared_ptr<Request>> queued;
  std::vector<std::function<void(ForwardContext&, ModelKvCache&)>> tasks;
  {
    std::lock_guard lock(mu_);
    queued.swap(queue_);
    tasks.swap(tasks_);
  }
  for (auto& r : queued) FinishQueued(*r, FinishReason::kCancelled);
  // Posted tasks complete callers' RPCs: run them rather than leave a caller waiting.
  std::unique_lock<std::mutex> compute;
  if (compute_mu_) compute = std::unique_lock(*compute_mu_);
  for (auto& t : tasks) t(*ctx_, *kv_);
}

void Scheduler::FinishQueued(Request& r, FinishReason reason) {
  GenerationUsage usage;
  usage.prompt_tokens = static_cast<int32_t>(r.req.prompt.size());
  usage.queue_ms = Ms(absl::Now() - r.submitted);
  for (int32_t i = 0; i < r.req.n; ++i) r.sink->OnFinish(i, reason, usage, "");
}

void Scheduler::DropCancelled() {
  std::unordered_set<RequestId> cancelled;
  std::vector<std::shared_ptr<Request>> dropped;
  {
    std::lock_guard lock(mu_);
    if (cancelled_.empty()) return;
    cancelled.swap(cancelled_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (cancelled.contains((*it)->id)) {
        dropped.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& r : dropped) FinishQueued(*r, FinishReason::kCancelled);
  for (size_t i = 0; i < running_.size();) {
    if (cancelled.contains(running_[i]->request->id)) {
      Finish(*running_[i], FinishReason::kCancelled);  // erases running_[i]
    } else {
      ++i;
    }
  }
  for (auto it = preempted_.begin(); it != preempted_.end();) {
    if (cancelled.contains((*it)->request->id)) {
      (*it)->request->sink->OnFinish((*it)->index, FinishReason::kCancelled, {}, "");
      ReleaseSeqId((*it)->seq);
      it = preempted_.erase(it);
    } else {
      ++it;
    }
  }
}

void Scheduler::Admit() {
  // Preempted sequences come back first; their blocks may still be cached.
  while (!preempted_.empty() && static_cast<int32_t>(running_.size()) < config_.max_seqs) {
    // Only when truly free blocks can hold it: its own old blocks sit in the
    // cached set, and counting those would re-admit it straight into the
    // shortage that evicted it.
    const int32_t needed =
        static_cast<int32_t>(preempted_.front()->tokens.size()) / config_.kv_block_size + 1;
    if (!running_.empty() && kv_->stats().blocks_free < needed) break;
    auto seq = std::move(preempted_.front());
    preempted_.pop_front();
    seq->n_computed = kv_->AttachPrefix(seq->seq, seq->tokens);
    running_.push_back(std::move(seq));
  }
  while (true) {
    std::shared_ptr<Request> r;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return;
      if (!preempted_.empty()) return;
      if (static_cast<int32_t>(running_.size()) + queue_.front()->req.n > config_.max_seqs) return;
      // Do not start a prompt the pool cannot hold right now; it waits.
      const int32_t blocks_needed =
          (static_cast<int32_t>(queue_.front()->req.prompt.size()) + config_.kv_block_size) / config_.kv_block_size;
      KvStats kv = kv_->stats();
      if (!running_.empty() && blocks_needed > kv.blocks_free + kv.blocks_cached) return;
      r = queue_.front();
      queue_.pop_front();
    }
    auto seq = std::make_unique<Sequence>();
    seq->request = r;
    seq->index = 0;
    seq->seq = AllocateSeqId();
    seq->tokens = r->req.prompt;
    seq->n_prompt = static_cast<int32_t>(r->req.prompt.size());
    auto sampler =
        Sampler::Create(r->req.sampling, static_cast<int32_t>(model_.params().n_vocab), token_pieces_);
    if (!sampler.ok()) {  // validated in Submit; kept as a guard
      r->sink->OnFinish(0, FinishReason::kError, {}, std::string(sampler.status().message()));
      ReleaseSeqId(seq->seq);
      continue;
    }
    seq->sampler = std::move(*sampler);
    seq->sampler->AcceptPrompt(seq->tokens);
    seq->admitted = absl::Now();
    seq->admit_order = ++admit_counter_;
    seq->n_computed = kv_->AttachPrefix(seq->seq, seq->tokens);
    seq->cached_prompt = seq->n_computed;
    prefix_query_tokens_ += seq->n_prompt;
    prefix_hit_tokens_ += seq->cached_prompt;
    running_.push_back(std::move(seq));
  }
}

bool Scheduler::Step() {
  if (running_.empty()) return false;
  // Decodes first (one token each, oldest first), then prefill chunks in
  // admission order with what is left of the token budget.
  std::vector<Sequence*> order;
  for (auto& s : running_) order.push_back(s.get());
  std::stable_sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) {
    bool da = a->pending() == 1, db = b->pending() == 1;
    if (da != db) return da;
    return a->admit_order < b->admit_order;
  });

  Batch batch;
  std::vector<std::pair<Sequence*, int32_t>> entries;  // (sequence, tokens in this step)
  std::unordered_set<Sequence*> preempted_now;
  int32_t budget = config_.max_batch_tokens;
  for (Sequence* s : order) {
    if (budget == 0) break;
    if (preempted_now.contains(s)) continue;
    int32_t chunk = std::min(s->pending(), budget);
    if (chunk <= 0) continue;
    absl::Status st = kv_->Prepare(s->seq, s->n_computed + chunk);
    while (!st.ok() && absl::IsResourceExhausted(st) && s->pending() == 1) {
      // A running decode must grow: make room by preempting the youngest
      // other sequence; if it is the only one, it cannot continue.
      Sequence* victim = nullptr;
      for (auto& o : running_) {
        if (o.get() == s) continue;
        bool in_batch = std::any_of(entries.begin(), entries.end(), [&](auto& e) { return e.first == o.get(); });
        if (in_batch || preempted_now.contains(o.get())) continue;
        if (!victim || o->admit_order > victim->admit_order) victim = o.get();
      }
      if (!victim) break;
      preempted_now.insert(victim);
      Preempt(*victim);
      st = kv_->Prepare(s->seq, s->n_computed + chunk);
    }
    if (!st.ok()) continue;  // waits for room (a decode only after nothing could be preempted)
    if (auto tst = kv_->SetTokens(s->seq, s->n_computed,
                                  std::span<const TokenId>(s->tokens.data() + s->n_computed, chunk));
        !tst.ok()) {
      spdlog::error("event=kv_set_tokens_failed error=\"{}\"", tst.message());
    }
    bool last = s->n_computed + chunk == static_cast<int32_t>(s->tokens.size());
    for (int32_t i = 0; i < chunk; ++i) {
      int32_t pos = s->n_computed + i;
      batch.Add(s->tokens[pos], pos, s->seq, last && i == chunk - 1);
    }
    entries.emplace_back(s, chunk);
    budget -= chunk;
  }
  if (entries.empty()) {
    // Every sequence is stuck on KV room. Free the youngest so the others can
    // move; a sequence that cannot fit even alone is an error, not a hang.
    if (running_.size() > 1) {
      Sequence* youngest = running_.front().get();
      for (auto& o : running_) if (o->admit_order > youngest->admit_order) youngest = o.get();
      Preempt(*youngest);
      return true;
    }
    if (running_.size() == 1) {
      Finish(*running_.front(), FinishReason::kError,
             absl::StrCat("KV cache budget (", kv_->stats().blocks_total, " blocks of ", config_.kv_block_size,
                          " positions) is too small for this sequence"));
      return true;
    }
    return false;
  }

  absl::Status st;
  {
    std::unique_lock<std::mutex> compute;
    if (compute_mu_) compute = std::unique_lock(*compute_mu_);
    st = ctx_->Decode(batch, *kv_, &out_);
  }
  if (!st.ok()) {
    spdlog::error("event=forward_failed error=\"{}\"", st.message());
    for (auto& [s, n] : entries) Finish(*s, FinishReason::kError, std::string(st.message()));
    return true;
  }

  double now = NowSeconds();
  int64_t n_decode = 0, n_prefill = 0;
  int32_t b = 0;
  std::vector<std::pair<Sequence*, int32_t>> to_sample;  // (sequence, batch entry of its output)
  for (auto& [s, n] : entries) {
    (n == 1 && s->n_generated > 0 ? n_decode : n_prefill) += n;
    s->n_computed += n;
    b += n;
    if (s->n_computed == static_cast<int32_t>(s->tokens.size())) to_sample.emplace_back(s, b - 1);
  }
  decode_window_.emplace_back(now, n_decode);
  prefill_window_.emplace_back(now, n_prefill);
  for (auto& [s, entry] : to_sample) {
    std::span<const float> logits = out_.ForBatchEntry(entry);
    SampleAndEmit(*s, logits);  // may Finish (erase) s
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.steps_total;
  }
  return true;
}

bool Scheduler::IsStop(const Sequence& seq, TokenId token) const {
  const auto& req = seq.request->req;
  if (!req.ignore_eos && token >= 0 && token < static_cast<TokenId>(is_eog_.size()) && is_eog_[token]) return true;
  return std::find(req.stop_token_ids.begin(), req.stop_token_ids.end(), token) != req.stop_token_ids.end();
}

void Scheduler::SampleAndEmit(Sequence& seq, std::span<const float> logits) {
  // Finish() destroys sequences; this keeps the request alive to the end.
  std::shared_ptr<Request> keep = seq.request;
  Request& r = *keep;
  // n > 1: the first completion's prompt is done; the others share its blocks
  // and sample their first token from the same logits.
  std::vector<Sequence*> samplers = {&seq};
  if (r.req.n > 1 && !r.forked && seq.index == 0) {
    r.forked = true;
    for (int32_t i = 1; i < r.req.n; ++i) {
      auto fork = std::make_unique<Sequence>();
      fork->request = seq.request;
      fork->index = i;
      fork->seq = AllocateSeqId();
      fork->tokens = seq.tokens;
      fork->n_prompt = seq.n_prompt;
      fork->n_computed = seq.n_computed;
      fork->cached_prompt = seq.cached_prompt;
      fork->sampler = seq.sampler->Clone(i);
      fork->admitted = seq.admitted;
      fork->admit_order = seq.admit_order;
      if (auto st = kv_->Fork(seq.seq, fork->seq); !st.ok()) {
        r.sink->OnFinish(i, FinishReason::kError, {}, std::string(st.message()));
        ReleaseSeqId(fork->seq);
        continue;
      }
      samplers.push_back(fork.get());
      running_.push_back(std::move(fork));
    }
  }
  for (Sequence* s : samplers) {
    SampleResult res = s->sampler->Sample(logits);
    s->sampler->Accept(res.token);
    if (s->n_generated == 0) s->first_token = absl::Now();
    s->tokens.push_back(res.token);
    ++s->n_generated;
    {
      std::lock_guard lock(mu_);
      ++stats_.tokens_generated_total;
    }
    r.sink->OnToken(s->index, res);
    if (IsStop(*s, res.token)) {
      Finish(*s, FinishReason::kStop);
    } else if ((r.req.max_tokens > 0 && s->n_generated >= r.req.max_tokens) ||
               static_cast<int32_t>(s->tokens.size()) >= config_.n_ctx) {
      Finish(*s, FinishReason::kLength);
    }
  }
}

void Scheduler::Finish(Sequence& seq, FinishReason reason, const std::string& error) {
  GenerationUsage u;
  absl::Time now = absl::Now();
  u.prompt_tokens = seq.n_prompt;
  u.completion_tokens = seq.n_generated;
  u.cached_prompt_tokens = seq.cached_prompt;
  u.queue_ms = Ms(seq.admitted - seq.request->submitted);
  if (seq.first_token != absl::InfinitePast()) {
    u.ttft_ms = Ms(seq.first_token - seq.request->submitted);
    u.prefill_ms = Ms(seq.first_token - seq.admitted);
    u.decode_ms = Ms(now - seq.first_token);
  }
  seq.request->sink->OnFinish(seq.index, reason, u, error);
  kv_->RemoveSeq(seq.seq);  // full blocks stay cached for prefix reuse
  ReleaseSeqId(seq.seq);
  auto it = std::find_if(running_.begin(), running_.end(), [&](auto& p) { return p.get() == &seq; });
  if (it != running_.end()) running_.erase(it);
}

void Scheduler::Preempt(Sequence& victim) {
  spdlog::debug("event=preempt request={} seq={} tokens={}", victim.request->req.request_id, victim.seq,
                victim.tokens.size());
  kv_->RemoveSeq(victim.seq);
  victim.n_computed = 0;
  auto it = std::find_if(running_.begin(), running_.end(), [&](auto& p) { return p.get() == &victim; });
  preempted_.push_back(std::move(*it));
  running_.erase(it);
}

void Scheduler::UpdateStats() {
  double now = NowSeconds();
  auto rate = [&](std::deque<std::pair<double, int64_t>>& w) {
    while (!w.empty() && w.front().first < now - kRateWindowSeconds) w.pop_front();
    int64_t total = 0;
    for (auto& [t, n] : w) total += n;
    return w.empty() ? 0.0 : total / kRateWindowSeconds;
  };
  double decode_rate = rate(decode_window_);
  double prefill_rate = rate(prefill_window_);
  std::lock_guard lock(mu_);
  stats_.queue_depth = static_cast<int32_t>(queue_.size() + preempted_.size());
  stats_.running_sequences = static_cast<int32_t>(running_.size());
  stats_.kv = kv_->stats();
  stats_.prefix_hit_rate =
      prefix_query_tokens_ == 0 ? 0.0 : static_cast<double>(prefix_hit_tokens_) / prefix_query_tokens_;
  stats_.decode_tokens_per_second = decode_rate;
  stats_.prefill_tokens_per_second = prefill_rate;
}

}  // namespace llmesh::engine
