// A persistent pool of worker threads: created once, reused for every
// parallel region (no thread creation per token).
#pragma once

#include <cstdint>
#include <functional>

namespace llmesh::engine {

class ThreadPool {
 public:
  // n_threads <= 0 means one per hardware core. The calling thread takes part
  // in every parallel region, so n_threads - 1 workers are started.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const;

  // Runs fn(ith, nth) on every thread (ith in [0, nth)) and returns when all
  // are done. Not reentrant: one parallel region at a time per pool.
  void Run(const std::function<void(int ith, int nth)>& fn);

  // Splits [0, n) into contiguous chunks over the threads.
  void ParallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace llmesh::engine
