// Continuous batching over one model. One thread (the loop) owns the KV cache,
// the forward context and every running sequence; other threads talk to it
// only through Submit / Cancel / Post, which queue work under a mutex.
//
// Each step the loop builds one Batch from: one token per running decode, then
// prefill chunks of admitted prompts up to max_batch_tokens (chunked prefill,
// so a long prompt never stalls the decodes for more than one step's worth).
// Requests join and leave at token boundaries. When the KV pool is full, new
// work waits; if a running sequence cannot grow, the youngest sequence is
// preempted (its blocks freed) and later recomputed from its tokens — load
// alone never fails a request.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/status/statusor.h"
#include "llmesh/engine/forward.h"
#include "llmesh/engine/generation.h"
#include "llmesh/engine/kv_model.h"
#include "llmesh/engine/model.h"
#include "llmesh/engine/thread_pool.h"

namespace llmesh::engine {

struct SchedulerConfig {
  int32_t n_ctx = 0;                 // per sequence; 0: the model's context length
  int32_t max_seqs = 16;             // sequences decoded together
  int32_t max_batch_tokens = 256;    // tokens per forward step (decodes + prefill chunks)
  int32_t max_queue = 256;           // waiting requests; beyond: RESOURCE_EXHAUSTED
  size_t kv_budget_bytes = 256u << 20;
  int32_t kv_block_size = 16;
};

struct SchedulerStats {
  int32_t queue_depth = 0;
  int32_t running_sequences = 0;
  KvStats kv;
  double prefix_hit_rate = 0;        // hit / queried prompt tokens since start
  double decode_tokens_per_second = 0;   // over the last few seconds
  double prefill_tokens_per_second = 0;
  int64_t requests_total = 0;
  int64_t tokens_generated_total = 0;
  int64_t steps_total = 0;
};

class Scheduler {
 public:
  using RequestId = uint64_t;

  // `compute_mu`, when given, is held around every forward step so several
  // schedulers (one per loaded model) can share one thread pool.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const Model& model, ThreadPool& pool,
                                                           SchedulerConfig config,
                                                           std::mutex* compute_mu = nullptr);
  ~Scheduler();  // cancels everything still queued or running, joins the loop
  // True on the scheduler's own thread, which must never destroy it.
  bool OnLoopThread() const { return std::this_thread::get_id() == loop_.get_id(); }

  // Validates and queues a request. INVALID_ARGUMENT for bad input (ids out of
  // the vocabulary, empty prompt, prompt too long, bad sampling parameters),
  // RESOURCE_EXHAUSTED when the queue is full.
  absl::StatusOr<RequestId> Submit(GenerationRequest request, std::shared_ptr<GenerationSink> sink);
  // Stops a request: its sequences leave the batch and free their KV blocks
  // within one step; the sink gets OnFinish(kCancelled). Unknown ids are ignored.
  void Cancel(RequestId id);

  // Runs `task` on the loop thread between steps (sessions, embeddings: work
  // that needs the KV cache or the forward context).
  void Post(std::function<void(ForwardContext&, ModelKvCache&)> task);

  // Sequence ids for work posted outside Submit (sessions, embeddings), so
  // they never collide with the scheduler's own.
  SeqId AllocateSeqId();
  void ReleaseSeqId(SeqId id);

  SchedulerStats Stats() const;
  const SchedulerConfig& config() const { return config_; }
  const Model& model() const { return model_; }
  // The model's vocabulary as bytes, for grammar-constrained sampling.
  const std::shared_ptr<const TokenPieces>& token_pieces() const { return token_pieces_; }

 private:
  struct Request;
  struct Sequence;
  Scheduler(const Model& model, ThreadPool& pool, SchedulerConfig config, std::mutex* compute_mu);

  void Loop();
  bool Step();  // one batch; false when there was nothing to do
  void Admit();
  void DropCancelled();
  void Finish(Sequence& seq, FinishReason reason, const std::string& error = "");
  void Preempt(Sequence& victim);
  void SampleAndEmit(Sequence& seq, std::span<const float> logits);
  void FinishQueued(Request& req, FinishReason reason);
  bool IsStop(const Sequence& seq, TokenId token) const;
  void UpdateStats();

  const Model& model_;
  SchedulerConfig config_;
  std::mutex* compute_mu_;
  std::unique_ptr<ForwardContext> ctx_;
  std::unique_ptr<ModelKvCache> kv_;
  // A step's logits, kept across steps: a fresh buffer (2 MB at 16 sequences
  // of a 32K vocabulary) was mapped, faulted in and unmapped every step.
  ForwardOutput out_;
  std::vector<uint8_t> is_eog_;  // (n_vocab) end-of-generation tokens of the model's vocabulary
  std::shared_ptr<const TokenPieces> token_pieces_;  // built once, shared by every sampler

  // Shared with other threads, under mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  std::vector<std::function<void(ForwardContext&, ModelKvCache&)>> tasks_;
  std::unordered_set<RequestId> cancelled_;
  std::vector<SeqId> free_seq_ids_;
  SeqId next_seq_id_ = 0;
  RequestId next_request_id_ = 1;
  SchedulerStats stats_;
  bool stopping_ = false;

  // Owned by the loop thread.
  std::vector<std::unique_ptr<Sequence>> running_;
  std::deque<std::unique_ptr<Sequence>> preempted_;  // re-admitted before the queue
  std::deque<std::pair<double, int64_t>> decode_window_, prefill_window_;  // (time s, tokens)
  int64_t prefix_query_tokens_ = 0, prefix_hit_tokens_ = 0;
  uint64_t admit_counter_ = 0;

  std::thread loop_;
};

}  // namespace llmesh::engine
