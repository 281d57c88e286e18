#include "llmesh/engine/bert_runner.h"

#include "absl/strings/str_cat.h"

namespace llmesh::engine {

BertRunner::BertRunner(const BertModel& model, ThreadPool& pool, std::mutex* compute_mu,
                       int32_t n_ubatch, int32_t max_queue)
    : forward_(model, pool, n_ubatch),
      compute_mu_(compute_mu),
      max_queue_(max_queue > 0 ? max_queue : 1),
      thread_([this] { Loop(); }) {}

BertRunner::~BertRunner() {
  std::deque<Job> left;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    left.swap(queue_);
  }
  cv_.notify_all();
  thread_.join();
  for (Job& job : left) job.done(absl::UnavailableError("the model was unloaded"));
}

void BertRunner::Submit(std::vector<std::vector<TokenId>> inputs, Pooling pooling, Done done) {
  if (inputs.empty()) return done(absl::InvalidArgumentError("no inputs to embed"));
  if (auto s = forward_.Validate(inputs); !s.ok()) return done(s);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return done(absl::UnavailableError("the model is being unloaded"));
    if (static_cast<int32_t>(queue_.size()) >= max_queue_) {
      return done(absl::ResourceExhaustedError(
          absl::StrCat("embedding queue full (", max_queue_, " batches waiting)")));
    }
    queue_.push_back(Job{std::move(inputs), pooling, std::move(done)});
  }
  cv_.notify_one();
}

bool BertRunner::OnRunnerThread() const { return std::this_thread::get_id() == thread_.get_id(); }

int32_t BertRunner::queue_depth() const {
  std::lock_guard lock(mu_);
  return static_cast<int32_t>(queue_.size()) + running_;
}

void BertRunner::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    running_ = 1;
    lock.unlock();
    absl::StatusOr<Embeddings> result;
    {
      std::unique_lock<std::mutex> compute;
      if (compute_mu_ != nullptr) compute = std::unique_lock(*compute_mu_);
      result = forward_.Embed(job.inputs, job.pooling);
    }
    job.done(std::move(result));
    lock.lock();
    running_ = 0;
  }
}

}  // namespace llmesh::engine
