#include "llmesh/gateway/admission.h"

#include <gtest/gtest.h>

#include <vector>

namespace llmesh::gateway {
namespace {

TEST(AdmissionTest, AdmitsUpToTheLimitQueuesThenRefuses) {
  Admission a(2, 1);
  std::vector<absl::Status> got;
  auto cb = [&](absl::Status s) { got.push_back(s); };
  absl::Time far = absl::Now() + absl::Hours(1);
  EXPECT_TRUE(a.Submit(far, cb, nullptr).ok());
  EXPECT_TRUE(a.Submit(far, cb, nullptr).ok());
  EXPECT_EQ(got.size(), 2u);
  EXPECT_TRUE(a.Submit(far, cb, nullptr).ok());  // queued
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(a.queued(), 1);
  absl::Status refused = a.Submit(far, cb, nullptr);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  a.Release();  // the queued one runs
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[2].ok());
  EXPECT_EQ(a.running(), 2);
  EXPECT_EQ(a.queued(), 0);
  a.Release();
  a.Release();
  EXPECT_EQ(a.running(), 0);
}

TEST(AdmissionTest, CancelAndDeadlineLeaveTheQueue) {
  Admission a(1, 4);
  std::vector<absl::Status> got;
  auto cb = [&](absl::Status s) { got.push_back(s); };
  absl::Time now = absl::Now();
  ASSERT_TRUE(a.Submit(now + absl::Hours(1), cb, nullptr).ok());
  Admission::Ticket t1 = 0, t2 = 0;
  ASSERT_TRUE(a.Submit(now + absl::Hours(1), cb, &t1).ok());
  ASSERT_TRUE(a.Submit(now + absl::Milliseconds(1), cb, &t2).ok());
  a.Cancel(t1);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(absl::IsCancelled(got[1]));
  a.ExpireQueued(now + absl::Seconds(1));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(absl::IsDeadlineExceeded(got[2]));
  EXPECT_EQ(a.queued(), 0);
  a.Cancel(t1);  // already gone: no-op
  EXPECT_EQ(got.size(), 3u);
}

TEST(AdmissionTest, CloseFailsTheQueueAndRefusesNewWork) {
  Admission a(1, 4);
  std::vector<absl::Status> got;
  auto cb = [&](absl::Status s) { got.push_back(s); };
  absl::Time far = absl::Now() + absl::Hours(1);
  ASSERT_TRUE(a.Submit(far, cb, nullptr).ok());
  ASSERT_TRUE(a.Submit(far, cb, nullptr).ok());
  a.Close();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(absl::IsUnavailable(got[1]));
  EXPECT_TRUE(absl::IsUnavailable(a.Submit(far, cb, nullptr)));
}

TEST(AdmissionTest, ZeroQueueRefusesAtOnce) {
  Admission a(1, 0);
  int admitted = 0;
  auto cb = [&](absl::Status) { ++admitted; };
  absl::Time far = absl::Now() + absl::Hours(1);
  ASSERT_TRUE(a.Submit(far, cb, nullptr).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(a.Submit(far, cb, nullptr)));
  EXPECT_EQ(admitted, 1);
}

}  // namespace
}  // namespace llmesh::gateway
