#include "llmesh/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "llmesh/common/logging.h"
#include "llmesh/gguf/ggml_type.h"
#include "llmesh/tokenizer/registry.h"
#include "spdlog/spdlog.h"

namespace llmesh::engine {
namespace fs = std::filesystem;

struct Engine::Session {
  std::string id;
  std::shared_ptr<LoadedModel> model;
  SeqId seq = -1;
  absl::Duration ttl;
  // Below: touched only on the model's scheduler thread (or under Engine::mu_
  // for last_used).
  absl::Time last_used;
  std::vector<TokenId> tokens;     // the session's context
  std::vector<float> last_logits;  // next-token logits after `tokens`
  bool closed = false;
};

namespace {

std::string StripGguf(const std::string& name) {
  return absl::EndsWith(name, ".gguf") ? name.substr(0, name.size() - 5) : name;
}

// The type most of the 2-D weights use ("q4_0"), for display.
std::string PredominantType(const gguf::GgufFile& file) {
  std::map<std::string, uint64_t> bytes;
  for (const auto& t : file.tensors()) {
    if (t.n_dims >= 2) bytes[std::string(gguf::ggml_type_name(t.type))] += t.nbytes;
  }
  std::string best;
  uint64_t most = 0;
  for (auto& [name, n] : bytes) {
    if (n > most) most = n, best = name;
  }
  return best;
}

std::vector<std::pair<TokenId, float>> TopLogprobs(std::span<const float> logits, int32_t n) {
  if (n <= 0 || logits.empty()) return {};
  float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  const float log_z = max + static_cast<float>(std::log(sum));
  std::vector<TokenId> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<TokenId>(i);
  n = std::min<int32_t>(n, static_cast<int32_t>(ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(),
                    [&](TokenId a, TokenId b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  std::vector<std::pair<TokenId, float>> out;
  for (int32_t i = 0; i < n; ++i) out.emplace_back(ids[i], logits[ids[i]] - log_z);
  return out;
}

// Appends `tokens` to `seq` and leaves the logits after the last one in `logits`.
absl::Status RunTokens(ForwardContext& ctx, ModelKvCache& kv, SeqId seq, int32_t pos0,
                       std::span<const TokenId> tokens, std::vector<float>* logits) {
  Batch batch;
  for (size_t i = 0; i < tokens.size(); ++i)
    batch.Add(tokens[i], pos0 + static_cast<int32_t>(i), seq, i + 1 == tokens.size());
  if (auto st = kv.SetTokens(seq, pos0, tokens); !st.ok()) return st;
  ForwardOutput out;
  if (auto st = ctx.Decode(batch, kv, &out); !st.ok()) return st;
  auto row = out.ForBatchEntry(batch.n_tokens() - 1);
  logits->assign(row.begin(), row.end());
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadedModel::CheckGenerative() const {
  if (scheduler != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "model '", name, "' is an embedding model (", info.architecture, "): it serves Embed only"));
}

Engine::Engine(EngineConfig config) : config_(std::move(config)), pool_(config_.n_threads) {
  reaper_ = std::thread([this] {
    std::unique_lock lock(reaper_mu_);
    while (!stopping_) {
      reaper_cv_.wait_for(lock, std::chrono::seconds(1));
      if (stopping_) break;
      lock.unlock();
      ReapSessions();
      lock.lock();
    }
  });
}

Engine::~Engine() {
  {
    std::lock_guard lock(reaper_mu_);
    stopping_ = true;
  }
  reaper_cv_.notify_all();
  reaper_.join();
  std::map<std::string, std::shared_ptr<LoadedModel>> models;
  {
    std::lock_guard lock(mu_);
    sessions_.clear();
    models.swap(models_);
  }
  // Schedulers stop (and fail what they still hold) as the models go.
}

absl::StatusOr<LoadedModelInfo> Engine::LoadModel(const std::string& name_in, int32_t n_ctx) {
  if (auto st = tokenizer::ValidateModelName(name_in); !st.ok()) return st;
  const std::string name = StripGguf(name_in);
  {
    std::lock_guard lock(mu_);
    if (auto it = models_.find(name); it != models_.end()) return it->second->info;
  }
  const std::string path = absl::StrCat(config_.model_dir, "/", name, ".gguf");
  if (config_.model_dir.empty() || !fs::is_regular_file(path))
    return absl::NotFoundError(absl::StrCat("model '", name, "' not found in the model directory"));
  spdlog::info("event=model_loading model={} path={}", name, path);
  absl::Time start = absl::Now();
  // A sink of an in-flight request holds its model, and the scheduler (or
  // bert runner) thread may drop the last reference: after UnloadModel, or at
  // shutdown. That thread must not run the destructor, which joins it
  // (std::system_error "Resource deadlock avoided", then terminate): another
  // thread does, and joins it once its step is over.
  std::shared_ptr<LoadedModel> lm(new LoadedModel, [](LoadedModel* m) {
    if ((m->scheduler && m->scheduler->OnLoopThread()) || (m->bert_runner && m->bert_runner->OnRunnerThread()))
      std::thread([m] { delete m; }).detach();
    else
      delete m;
  });
  lm->name = name;
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok())
    return absl::InvalidArgumentError(absl::StrCat("model '", name, "': ", file.status().message()));
  LoadedModelInfo& info = lm->info;
  info.name = name;
  if (IsBertFile(**file)) {  // an encoder: Embed only, no scheduler or KV cache
    auto bert = BertModel::FromGguf(std::move(*file));
    if (!bert.ok())
      return absl::InvalidArgumentError(absl::StrCat("model '", name, "': ", bert.status().message()));
    lm->bert = std::move(*bert);
    const BertParams& hp = lm->bert->params();
    info.architecture = "bert";
    info.n_params = lm->bert->ParameterCount();
    info.size_bytes = static_cast<int64_t>(lm->bert->TensorBytes());
    // The learned positions bound the input; a smaller n_ctx may lower it.
    info.n_ctx = static_cast<int32_t>(n_ctx > 0 ? std::min<int64_t>(n_ctx, hp.n_ctx_train) : hp.n_ctx_train);
    info.n_vocab = static_cast<int32_t>(hp.n_vocab);
    info.n_embd = static_cast<int32_t>(hp.n_embd);
    info.weight_type = PredominantType(lm->bert->file());
  } else {
    auto model = Model::FromGguf(std::move(*file));
    if (!model.ok())
      return absl::InvalidArgumentError(absl::StrCat("model '", name, "': ", model.status().message()));
    lm->model = std::move(*model);
    const auto& hp = lm->model->params();
    info.architecture = std::string(ArchName(hp.arch));
    info.n_params = lm->model->ParameterCount();
    info.size_bytes = static_cast<int64_t>(lm->model->TensorBytes());
    info.n_vocab = static_cast<int32_t>(hp.n_vocab);
    info.n_embd = static_cast<int32_t>(hp.n_embd);
    info.weight_type = PredominantType(lm->model->file());
  }
  auto tok = tokenizer::Tokenizer::FromGguf(lm->bert ? lm->bert->file() : lm->model->file());
  if (!tok.ok())
    return absl::InvalidArgumentError(absl::StrCat("model '", name, "' vocabulary: ", tok.status().message()));
  lm->tokenizer = std::move(*tok);
  if (lm->bert) {
    const int32_t n_ubatch = std::max(config_.scheduler.max_batch_tokens, info.n_ctx);
    lm->bert_runner = std::make_unique<BertRunner>(*lm->bert, pool_, &compute_mu_, n_ubatch,
                                                   config_.scheduler.max_queue);
  } else {
    SchedulerConfig sc = config_.scheduler;
    if (n_ctx > 0) sc.n_ctx = n_ctx;
    auto sched = Scheduler::Create(*lm->model, pool_, sc, &compute_mu_);
    if (!sched.ok()) return sched.status();
    lm->scheduler = std::move(*sched);
    info.n_ctx = lm->scheduler->config().n_ctx;
  }
  info.loaded = true;
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = models_.emplace(name, lm);
    if (!inserted) return it->second->info;  // a concurrent load won
  }
  spdlog::info("event=model_loaded model={} params={} ctx={} load_ms={:.1f}", name, info.n_params, info.n_ctx,
               absl::ToDoubleMilliseconds(absl::Now() - start));
  return info;
}

absl::Status Engine::UnloadModel(const std::string& name_in) {
  const std::string name = StripGguf(name_in);
  std::shared_ptr<LoadedModel> victim;
  {
    std::lock_guard lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("model '", name, "' is not loaded"));
    victim = it->second;
    models_.erase(it);
    for (auto s = sessions_.begin(); s != sessions_.end();) {
      if (s->second->model == victim) s = sessions_.erase(s);
      else ++s;
    }
  }
  spdlog::info("event=model_unloaded model={}", name);
  return absl::OkStatus();  // freed when the last in-flight call lets go
}

std::vector<LoadedModelInfo> Engine::ListModels(bool include_available) const {
  std::vector<LoadedModelInfo> out;
  std::lock_guard lock(mu_);
  for (const auto& [name, m] : models_) out.push_back(m->info);
  if (include_available) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(config_.model_dir, ec)) {
      if (!e.is_regular_file() || e.path().extension() != ".gguf") continue;
      std::string name = e.path().stem().string();
      if (models_.contains(name)) continue;
      LoadedModelInfo info;
      info.name = name;
      info.size_bytes = static_cast<int64_t>(e.file_size(ec));
      out.push_back(info);
    }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<std::shared_ptr<LoadedModel>> Engine::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(StripGguf(name));
  if (it == models_.end()) {
    if (name.empty() && models_.size() == 1) return models_.begin()->second;  // the only model
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not loaded"));
  }
  return it->second;
}

bool Engine::AnyLoaded() const {
  std::lock_guard lock(mu_);
  return !models_.empty();
}

absl::StatusOr<std::string> Engine::OpenSession(const std::string& model, absl::Duration ttl) {
  auto lm = Get(model);
  if (!lm.ok()) return lm.status();
  if (auto st = (*lm)->CheckGenerative(); !st.ok()) return st;
  auto s = std::make_shared<Session>();
  s->model = *lm;
  s->ttl = ttl > absl::ZeroDuration() ? ttl : config_.session_ttl;
  s->last_used = absl::Now();
  std::lock_guard lock(mu_);
  if (static_cast<int32_t>(sessions_.size()) >= config_.max_sessions)
    return absl::ResourceExhaustedError(absl::StrCat("too many open sessions (", config_.max_sessions, ")"));
  s->id = absl::StrCat("s", next_session_++, "-", absl::ToUnixMicros(absl::Now()) % 1000000);
  s->seq = s->model->scheduler->AllocateSeqId();
  sessions_[s->id] = s;
  return s->id;
}

absl::StatusOr<std::shared_ptr<Engine::Session>> Engine::FindSession(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("session '", id, "' not found (closed or expired)"));
  it->second->last_used = absl::Now();
  return it->second;
}

void Engine::DropSession(const std::shared_ptr<Session>& s) {
  // KV is freed on the scheduler thread, which owns it.
  s->model->scheduler->Post([s](ForwardContext&, ModelKvCache& kv) {
    s->closed = true;
    kv.RemoveSeq(s->seq);
    s->model->scheduler->ReleaseSeqId(s->seq);
  });
}

absl::Status Engine::CloseSession(const std::string& id) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("session '", id, "' not found"));
    s = it->second;
    sessions_.erase(it);
  }
  DropSession(s);
  return absl::OkStatus();
}

int32_t Engine::OpenSessions() const {
  std::lock_guard lock(mu_);
  return static_cast<int32_t>(sessions_.size());
}

void Engine::ReapSessions() {
  std::vector<std::shared_ptr<Session>> expired;
  {
    std::lock_guard lock(mu_);
    absl::Time now = absl::Now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (now - it->second->last_used > it->second->ttl) {
        expired.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : expired) {
    spdlog::debug("event=session_expired session={}", s->id);
    DropSession(s);
  }
}

void Engine::Prefill(const std::string& id, std::vector<TokenId> tokens, int32_t top_logprobs,
                     std::function<void(absl::StatusOr<PrefillResult>)> done) {
  auto s = FindSession(id);
  if (!s.ok()) return done(s.status());
  const auto& hp = (*s)->model->model->params();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= hp.n_vocab)
      return done(absl::InvalidArgumentError(
          absl::StrCat("token_ids[", i, "] = ", tokens[i], " is outside the vocabulary [0, ", hp.n_vocab, ")")));
  }
  if (tokens.empty()) return done(absl::InvalidArgumentError("token_ids is empty"));
  if (top_logprobs < 0 || top_logprobs > 20) return done(absl::InvalidArgumentError("top_logprobs must be in 0..20"));
  const int32_t n_ctx = (*s)->model->scheduler->config().n_ctx;
  (*s)->model->scheduler->Post([session = *s, tokens = std::move(tokens), top_logprobs, n_ctx,
                                done = std::move(done)](ForwardContext& ctx, ModelKvCache& kv) {
    if (session->closed) return done(absl::NotFoundError("session closed"));
    int32_t n_past = static_cast<int32_t>(session->tokens.size());
    if (n_past + static_cast<int32_t>(tokens.size()) > n_ctx)
      return done(absl::InvalidArgumentError(absl::StrCat("session would hold ", n_past + tokens.size(),
                                                          " tokens; the context holds ", n_ctx)));
    PrefillResult result;
    std::vector<TokenId> all = session->tokens;
    all.insert(all.end(), tokens.begin(), tokens.end());
    int32_t start = n_past;
    if (n_past == 0) {  // a fresh session may start from a cached prefix
      result.cached_tokens = kv.AttachPrefix(session->seq, all);
      start = result.cached_tokens;
    }
    auto st = RunTokens(ctx, kv, session->seq, start, std::span<const TokenId>(all).subspan(start),
                        &session->last_logits);
    if (!st.ok()) {
      // Keep the session consistent with its cache: drop what may be half-written.
      kv.RemoveSeq(session->seq);
      session->tokens.clear();
      session->last_logits.clear();
      return done(st);
    }
    session->tokens = std::move(all);
    result.n_past = static_cast<int32_t>(session->tokens.size());
    result.top_logprobs = TopLogprobs(session->last_logits, top_logprobs);
    done(std::move(result));
  });
}

void Engine::Decode(const std::string& id, SamplingConfig sampling, int32_t n_tokens,
                    std::vector<TokenId> stop_token_ids, bool ignore_eos,
                    std::function<void(absl::StatusOr<DecodeResult>)> done) {
  auto s = FindSession(id);
  if (!s.ok()) return done(s.status());
  auto lm = (*s)->model;
  const int32_t n_vocab = static_cast<int32_t>(lm->model->params().n_vocab);
  if (n_tokens < 1 || n_tokens > 4096) return done(absl::InvalidArgumentError("n_tokens must be in 1..4096"));
  if (auto st = ValidateSamplingConfig(sampling, n_vocab); !st.ok()) return done(st);
  auto sampler = Sampler::Create(sampling, n_vocab, lm->scheduler->token_pieces());
  if (!sampler.ok()) return done(sampler.status());
  const int32_t n_ctx = lm->scheduler->config().n_ctx;
  lm->scheduler->Post([session = *s, sampler = std::shared_ptr<Sampler>(std::move(*sampler)), n_tokens, n_ctx,
                       stop = std::move(stop_token_ids), ignore_eos,
                       done = std::move(done)](ForwardContext& ctx, ModelKvCache& kv) {
    if (session->closed) return done(absl::NotFoundError("session closed"));
    if (session->last_logits.empty())
      return done(absl::FailedPreconditionError("session has no context yet: call Prefill first"));
    const auto& tok = *session->model->tokenizer;
    sampler->AcceptPrompt(session->tokens);
    DecodeResult result;
    for (int32_t i = 0; i < n_tokens; ++i) {
      if (static_cast<int32_t>(session->tokens.size()) >= n_ctx) {
        result.finish = FinishReason::kLength;
        break;
      }
      SampleResult r = sampler->Sample(session->last_logits);
      sampler->Accept(r.token);
      result.tokens.push_back(r);
      const int32_t pos = static_cast<int32_t>(session->tokens.size());
      session->tokens.push_back(r.token);
      if ((!ignore_eos && tok.is_eog(r.token)) || std::find(stop.begin(), stop.end(), r.token) != stop.end()) {
        // The stop token joins the context but needs no forward pass yet:
        // the next Prefill/Decode computes it.
        session->tokens.pop_back();
        result.finish = FinishReason::kStop;
        break;
      }
      auto st = RunTokens(ctx, kv, session->seq, pos, std::span<const TokenId>(&session->tokens[pos], 1),
                          &session->last_logits);
      if (!st.ok()) {
        session->tokens.pop_back();
        return done(st);
      }
    }
    result.n_past = static_cast<int32_t>(session->tokens.size());
    done(std::move(result));
  });
}

void Engine::Embed(const std::string& model, std::vector<std::vector<TokenId>> inputs, Pooling pooling,
                   std::function<void(absl::StatusOr<EmbedResult>)> done) {
  auto lm = Get(model);
  if (!lm.ok()) return done(lm.status());
  if (inputs.empty()) return done(absl::InvalidArgumentError("no inputs to embed"));
  if ((*lm)->bert_runner) {
    // An encoder: the runner validates, runs the batch and pools.
    const int32_t n_ctx = (*lm)->info.n_ctx;
    std::vector<int32_t> n_tokens;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (static_cast<int32_t>(inputs[i].size()) > n_ctx)
        return done(absl::InvalidArgumentError(
            absl::StrCat("input ", i, " has ", inputs[i].size(), " tokens; the model takes at most ", n_ctx)));
      n_tokens.push_back(static_cast<int32_t>(inputs[i].size()));
    }
    (*lm)->bert_runner->Submit(std::move(inputs), pooling,
                               [n_tokens = std::move(n_tokens), done = std::move(done)](
                                   absl::StatusOr<BertRunner::Embeddings> r) mutable {
                                 if (!r.ok()) return done(r.status());
                                 EmbedResult result;
                                 result.embeddings = std::move(*r);
                                 result.n_tokens = std::move(n_tokens);
                                 done(std::move(result));
                               });
    return;
  }
  if (pooling == Pooling::kCls)
    return done(absl::InvalidArgumentError("CLS pooling needs an encoder (bert) model; use MEAN or LAST"));
  if (pooling == Pooling::kDefault) pooling = Pooling::kMean;
  const auto& hp = (*lm)->model->params();
  const int32_t n_ctx = (*lm)->scheduler->config().n_ctx;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) return done(absl::InvalidArgumentError(absl::StrCat("input ", i, " is empty")));
    if (static_cast<int32_t>(inputs[i].size()) > n_ctx)
      return done(absl::InvalidArgumentError(
          absl::StrCat("input ", i, " has ", inputs[i].size(), " tokens; the context holds ", n_ctx)));
    for (TokenId t : inputs[i]) {
      if (t < 0 || t >= hp.n_vocab)
        return done(absl::InvalidArgumentError(absl::StrCat("input ", i, ": token id ", t, " is outside the vocabulary")));
    }
  }
  auto sched = (*lm)->scheduler.get();
  sched->Post([keep = *lm, sched, inputs = std::move(inputs), pooling, done = std::move(done)](
                  ForwardContext& ctx, ModelKvCache& kv) {
    EmbedResult result;
    SeqId seq = sched->AllocateSeqId();
    for (const auto& in : inputs) {
      auto e = engine::Embed(ctx, kv, in, pooling, seq);
      if (!e.ok()) {
        sched->ReleaseSeqId(seq);
        return done(e.status());
      }
      result.embeddings.push_back(std::move(*e));
      result.n_tokens.push_back(static_cast<int32_t>(in.size()));
    }
    sched->ReleaseSeqId(seq);
    done(std::move(result));
  });
}

}  // namespace llmesh::engine
