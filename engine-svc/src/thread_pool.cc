// Persistent worker pool with a spin-then-sleep handoff, both ways.
//
// Decode calls Run a few hundred times per token with microseconds of work
// each, so waking workers through a mutex/condvar (tens of microseconds) would
// dominate. Workers spin on a generation counter for a while after each region
// and only then sleep on it (futex via std::atomic::wait); Run pays for a
// notify only when somebody is actually asleep.
//
// Each thread index of a region is a slot that whoever gets to it first
// claims: its worker, or the caller once its own share is done. A worker that
// is not on a core (the machine is busier than its cores, or the worker is
// still waking from the futex) then costs the region one more share of work
// instead of a scheduler time slice: with two busy processes beside a
// 2-thread engine, a drain test of 3500 decoded tokens took 15 s with fixed
// ownership, every region waiting for a descheduled worker.
#include "llmesh/engine/thread_pool.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LLMESH_CPU_RELAX() _mm_pause()
#else
#define LLMESH_CPU_RELAX() std::this_thread::yield()
#endif

namespace llmesh::engine {
namespace {
// How long an idle worker spins before sleeping: long enough to span the
// single-threaded gaps between a token's matmuls and between decode steps
// (sampling, scheduling), short enough not to burn a core between requests.
// Waking a sleeper through the futex took about 0.5 ms on a 2-vCPU VM.
constexpr auto kSpinTime = std::chrono::milliseconds(2);
// How long Run's caller spins for the workers to finish before sleeping,
// yielding now and then so that a worker sharing its core (more busy threads
// than cores, e.g. two engines on one machine) gets it. At 50 us, a
// 16-stream TinyLlama run slept in 933 of its 37K joins (26 at 1 ms), each
// waking up to hundreds of microseconds late.
constexpr auto kJoinSpinTime = std::chrono::milliseconds(1);
}  // namespace

struct ThreadPool::Impl {
  int n_threads = 1;
  std::vector<std::thread> workers;
  const std::function<void(int, int)>* fn = nullptr;
  // Cache-line separated: the generation is read by every spinning worker,
  // `pending` is written by each one as it finishes.
  alignas(64) std::atomic<uint64_t> generation{0};
  alignas(64) std::atomic<int> pending{0};
  alignas(64) std::atomic<int> sleepers{0};
  std::atomic<bool> caller_sleeping{false};
  std::atomic<bool> stop{false};
  // The generation for which slot i was last claimed; slot 0 is the caller's.
  struct alignas(64) Slot {
    std::atomic<uint64_t> claimed{0};
  };
  std::unique_ptr<Slot[]> slots;

  // At most one thread wins slot i of region `gen`, and only while that region
  // is open: the caller cannot start the next one before every slot is taken.
  bool Claim(int i, uint64_t gen) {
    uint64_t prev = slots[i].claimed.load(std::memory_order_acquire);
    return prev < gen && slots[i].claimed.compare_exchange_strong(prev, gen);
  }

  // Runs every still unclaimed slot of region `gen`, starting at `first`.
  void RunUnclaimed(int first, uint64_t gen) {
    for (int k = 0; k < n_threads - 1; ++k) {
      const int i = 1 + (first - 1 + k) % (n_threads - 1);
      if (!Claim(i, gen)) continue;
      (*fn)(i, n_threads);
      // seq_cst, paired with Join: either it sees pending == 0 before it
      // sleeps, or the last slot's runner sees it asleep and wakes it.
      if (pending.fetch_sub(1) == 1 && caller_sleeping.load()) pending.notify_one();
    }
  }

  void WorkerLoop(int ith) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t gen = generation.load(std::memory_order_acquire);
      if (gen == seen) {
        const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
        int spins = 0;
        while ((gen = generation.load(std::memory_order_acquire)) == seen) {
          LLMESH_CPU_RELAX();
          // With more threads than free cores a spinning worker can hold the
          // core a working one needs; yielding now and then bounds that.
          if (++spins % 1024 == 0) std::this_thread::yield();
          if (spins % 256 == 0 && std::chrono::steady_clock::now() > deadline) {
            sleepers.fetch_add(1);
            generation.wait(seen);  // returns at once if it already moved
            sleepers.fetch_sub(1);
          }
        }
      }
      seen = gen;
      if (stop.load(std::memory_order_acquire)) return;
      RunUnclaimed(ith, gen);  // its own slot first
    }
  }

  // Waits until every claimed slot of the current region has finished.
  void Join() {
    const auto deadline = std::chrono::steady_clock::now() + kJoinSpinTime;
    int spins = 0;
    while (pending.load(std::memory_order_acquire) != 0) {
      LLMESH_CPU_RELAX();
      if (++spins % 1024 == 0) std::this_thread::yield();
      if (spins % 256 != 0 || std::chrono::steady_clock::now() < deadline) continue;
      caller_sleeping.store(true);
      for (int p = pending.load(); p != 0; p = pending.load()) pending.wait(p);
      caller_sleeping.store(false);
    }
  }

  uint64_t Publish() {
    const uint64_t gen = generation.fetch_add(1) + 1;  // seq_cst: ordered before the sleepers check
    if (sleepers.load() > 0) generation.notify_all();
    return gen;
  }
};

ThreadPool::ThreadPool(int n_threads) : impl_(new Impl) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (n_threads <= 0) n_threads = 1;
  impl_->n_threads = n_threads;
  impl_->slots = std::make_unique<Impl::Slot[]>(n_threads);
  impl_->workers.reserve(n_threads - 1);
  for (int i = 1; i < n_threads; ++i) {
    impl_->workers.emplace_back([this, i] { impl_->WorkerLoop(i); });
  }
}

ThreadPool::~ThreadPool() {
  impl_->stop.store(true, std::memory_order_release);
  impl_->Publish();
  for (std::thread& t : impl_->workers) t.join();
  delete impl_;
}

int ThreadPool::n_threads() const { return impl_->n_threads; }

void ThreadPool::Run(const std::function<void(int ith, int nth)>& fn) {
  const int n = impl_->n_threads;
  if (n == 1) {
    fn(0, 1);
    return;
  }
  impl_->fn = &fn;
  impl_->pending.store(n - 1, std::memory_order_relaxed);
  const uint64_t gen = impl_->Publish();
  fn(0, n);
  impl_->RunUnclaimed(1, gen);
  impl_->Join();
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn) {
  if (n <= 0) return;
  Run([&](int ith, int nth) {
    const int64_t begin = n * ith / nth;
    const int64_t end = n * (ith + 1) / nth;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace llmesh::engine
