// Serves Embed for one loaded bert model: a thread of its own takes batches
// of inputs from a bounded queue and runs each through a BertForward on the
// engine's shared thread pool, holding the engine's compute mutex so it
// never runs beside another model's forward step (the pool runs one
// parallel region at a time).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/engine/bert_forward.h"

namespace llmesh::engine {

class BertRunner {
 public:
  using Embeddings = std::vector<std::vector<float>>;  // (n_inputs)(n_embd)
  using Done = std::function<void(absl::StatusOr<Embeddings>)>;

  // `compute_mu` may be null (a runner alone on its pool).
  BertRunner(const BertModel& model, ThreadPool& pool, std::mutex* compute_mu, int32_t n_ubatch,
             int32_t max_queue);
  // Fails what is still queued with UNAVAILABLE and joins the thread.
  ~BertRunner();
  BertRunner(const BertRunner&) = delete;
  BertRunner& operator=(const BertRunner&) = delete;

  // Validates at once (INVALID_ARGUMENT to `done` on this thread), answers
  // RESOURCE_EXHAUSTED when max_queue batches already wait, else queues;
  // `done` is then called on the runner's thread.
  void Submit(std::vector<std::vector<TokenId>> inputs, Pooling pooling, Done done);

  // Batches waiting or running.
  int32_t queue_depth() const;
  // True on the runner's own thread, which must never destroy it.
  bool OnRunnerThread() const;

 private:
  struct Job {
    std::vector<std::vector<TokenId>> inputs;
    Pooling pooling;
    Done done;
  };
  void Loop();

  BertForward forward_;  // touched only by the runner thread (Validate is const)
  std::mutex* compute_mu_;
  const int32_t max_queue_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  int32_t running_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace llmesh::engine
