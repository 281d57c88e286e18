#include "llmesh/engine/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace llmesh::engine {
namespace {

TEST(ThreadPoolTest, DefaultIsOnePerCore) {
  ThreadPool pool;
  EXPECT_EQ(pool.n_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST(ThreadPoolTest, EveryThreadRunsEachRegionOnce) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    std::vector<std::atomic<int>> hits(n);
    for (int region = 0; region < 2000; ++region) {
      pool.Run([&](int ith, int nth) {
        ASSERT_EQ(nth, n);
        hits[ith].fetch_add(1);
      });
    }
    for (int i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 2000) << "thread " << i;
  }
}

TEST(ThreadPoolTest, RunIsABarrier) {
  ThreadPool pool(4);
  std::atomic<int> counter{0};
  for (int region = 0; region < 500; ++region) {
    pool.Run([&](int, int) { counter.fetch_add(1); });
    ASSERT_EQ(counter.load(), 4 * (region + 1));  // all done before Run returns
  }
}

// More busy threads than cores: workers are often off a core when a region
// opens, so the caller (or another worker) claims their slots. Each slot must
// still run exactly once per region, and Run must still be a barrier.
TEST(ThreadPoolTest, OversubscribedSlotsRunOnceWhoeverClaimsThem) {
  const int n_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<bool> done{false};
  std::vector<std::thread> hogs;
  for (int i = 0; i < 2 * n_cores; ++i) {
    hogs.emplace_back([&] {
      while (!done.load(std::memory_order_relaxed)) {
      }
    });
  }
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(3);
  std::atomic<int> counter{0};
  for (int region = 0; region < 3000; ++region) {
    pool.Run([&](int ith, int) {
      hits[ith].fetch_add(1);
      counter.fetch_add(1);
    });
    ASSERT_EQ(counter.load(), 3 * (region + 1));
  }
  done.store(true);
  for (std::thread& t : hogs) t.join();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(hits[i].load(), 3000) << "slot " << i;
}

TEST(ThreadPoolTest, ParallelForCoversEachIndexOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 2, 3, 7, 100, 1001}) {
    std::vector<std::atomic<int>> seen(n);
    pool.ParallelFor(n, [&](int64_t b, int64_t e) {
      ASSERT_LE(0, b);
      ASSERT_LT(b, e);
      ASSERT_LE(e, n);
      for (int64_t i = b; i < e; ++i) seen[i].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST(ThreadPoolTest, WakesSleepingWorkers) {
  ThreadPool pool(2);
  std::atomic<int> counter{0};
  for (int i = 0; i < 3; ++i) {
    // Longer than the spin window, so workers are asleep on the futex.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pool.Run([&](int, int) { counter.fetch_add(1); });
  }
  EXPECT_EQ(counter.load(), 6);
}

TEST(ThreadPoolTest, DestroysPromptlyIdleOrFresh) {
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(3);
    if (i % 2) pool.Run([](int, int) {});
  }
  ThreadPool sleeper(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

}  // namespace
}  // namespace llmesh::engine
