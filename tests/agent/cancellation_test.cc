// Cancellation: callbacks run once on Cancel (or at once when registered
// late), a dropped registration never runs, and WaitUntil wakes on cancel.
#include "llmesh/agent/cancellation.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "absl/time/clock.h"

namespace llmesh::agent {
namespace {

TEST(CancellationTest, CallbacksRunOnceOnCancel) {
  Cancellation c;
  int runs = 0;
  auto reg = c.OnCancel([&] { ++runs; });
  EXPECT_FALSE(c.cancelled());
  c.Cancel();
  c.Cancel();
  EXPECT_TRUE(c.cancelled());
  EXPECT_EQ(runs, 1);
  int late = 0;
  auto reg2 = c.OnCancel([&] { ++late; });
  EXPECT_EQ(late, 1);  // already cancelled: at once
}

TEST(CancellationTest, DroppedRegistrationDoesNotRun) {
  Cancellation c;
  int runs = 0;
  {
    auto reg = c.OnCancel([&] { ++runs; });
  }
  Cancellation::Registration moved;
  {
    auto reg = c.OnCancel([&] { runs += 10; });
    moved = std::move(reg);
  }
  moved = Cancellation::Registration();  // reassigning drops the one it held
  c.Cancel();
  EXPECT_EQ(runs, 0);
}

TEST(CancellationTest, WaitUntilWakesOnCancel) {
  Cancellation c;
  EXPECT_FALSE(c.WaitUntil(absl::Now() + absl::Milliseconds(20)));
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    c.Cancel();
  });
  absl::Time start = absl::Now();
  EXPECT_TRUE(c.WaitUntil(absl::Now() + absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  t.join();
}

}  // namespace
}  // namespace llmesh::agent
