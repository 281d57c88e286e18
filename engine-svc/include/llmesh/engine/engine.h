// The serving engine behind engine.proto, without gRPC: models loaded by name
// from one directory, a continuous-batching scheduler per model sharing one
// thread pool, pinned-KV sessions, and embeddings.
//
// Calls that need the model's KV cache or forward context (sessions,
// embeddings) run on that model's scheduler thread; they take a completion
// callback instead of blocking the caller's (gRPC) thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "llmesh/engine/bert_model.h"
#include "llmesh/engine/bert_runner.h"
#include "llmesh/engine/embed.h"
#include "llmesh/engine/model.h"
#include "llmesh/engine/scheduler.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace llmesh::engine {

struct EngineConfig {
  std::string model_dir;
  int n_threads = 0;                      // 0: one per core
  SchedulerConfig scheduler;              // per loaded model
  absl::Duration session_ttl = absl::Seconds(60);
  int32_t max_sessions = 64;
};

struct LoadedModelInfo {
  std::string name;
  std::string architecture;
  int64_t n_params = 0;
  int64_t size_bytes = 0;
  int32_t n_ctx = 0;
  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  std::string weight_type;
  bool loaded = false;
};

// A model with everything that serves it: either a decoder (`model` and its
// `scheduler`: generation, sessions, pooled embeddings) or a bert encoder
// (`bert` and its `bert_runner`: Embed only); the other pair is null.
struct LoadedModel {
  std::string name;
  std::unique_ptr<Model> model;
  std::unique_ptr<BertModel> bert;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<BertRunner> bert_runner;  // after `bert`: destroyed first
  LoadedModelInfo info;

  // FAILED_PRECONDITION for an embedding-only model, naming it.
  absl::Status CheckGenerative() const;
};

struct PrefillResult {
  int32_t n_past = 0;
  int32_t cached_tokens = 0;
  std::vector<std::pair<TokenId, float>> top_logprobs;
};

struct DecodeResult {
  std::vector<SampleResult> tokens;
  int32_t n_past = 0;
  FinishReason finish = FinishReason::kNone;
};

struct EmbedResult {
  std::vector<std::vector<float>> embeddings;  // (n_inputs)(n_embd)
  std::vector<int32_t> n_tokens;
};

class Engine {
 public:
  explicit Engine(EngineConfig config);
  ~Engine();

  // Idempotent: loading a loaded model returns its info. NOT_FOUND for a name
  // not in the model directory, INVALID_ARGUMENT for a path-like name or a
  // malformed file (with the loader's reason).
  absl::StatusOr<LoadedModelInfo> LoadModel(const std::string& name, int32_t n_ctx = 0);
  absl::Status UnloadModel(const std::string& name);
  std::vector<LoadedModelInfo> ListModels(bool include_available) const;
  absl::StatusOr<std::shared_ptr<LoadedModel>> Get(const std::string& name) const;
  bool AnyLoaded() const;

  // Sessions: a sequence whose KV cache stays in the engine between calls.
  absl::StatusOr<std::string> OpenSession(const std::string& model, absl::Duration ttl);
  void Prefill(const std::string& session, std::vector<TokenId> tokens, int32_t top_logprobs,
               std::function<void(absl::StatusOr<PrefillResult>)> done);
  void Decode(const std::string& session, SamplingConfig sampling, int32_t n_tokens,
              std::vector<TokenId> stop_token_ids, bool ignore_eos,
              std::function<void(absl::StatusOr<DecodeResult>)> done);
  absl::Status CloseSession(const std::string& session);
  int32_t OpenSessions() const;

  // One L2-normalised vector per input. kDefault: the model's pooling (a
  // bert file's pooling_type, mean for a decoder); kCls only for bert.
  void Embed(const std::string& model, std::vector<std::vector<TokenId>> inputs, Pooling pooling,
             std::function<void(absl::StatusOr<EmbedResult>)> done);

  ThreadPool& pool() { return pool_; }
  const EngineConfig& config() const { return config_; }

 private:
  struct Session;
  absl::StatusOr<std::shared_ptr<Session>> FindSession(const std::string& id);
  void ReapSessions();
  void DropSession(const std::shared_ptr<Session>& s);

  EngineConfig config_;
  ThreadPool pool_;
  std::mutex compute_mu_;  // one forward step at a time across models

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<LoadedModel>> models_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
  uint64_t next_session_ = 1;

  std::mutex reaper_mu_;
  std::condition_variable reaper_cv_;
  bool stopping_ = false;
  std::thread reaper_;
};

}  // namespace llmesh::engine
