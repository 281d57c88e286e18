#include "llmesh/gateway/router.h"

#include <gtest/gtest.h>

#include "llmesh/gateway/worker_table.h"

namespace llmesh::gateway {
namespace {

WorkerState W(const std::string& a, int outstanding, bool healthy = true, std::vector<std::string> models = {"m"}) {
  WorkerState w;
  w.address = a;
  w.outstanding = outstanding;
  w.healthy = healthy;
  w.models = std::move(models);
  return w;
}

std::vector<int32_t> Prompt(int n, int seed) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(seed * 1000 + i);
  return p;
}

TEST(RouterTest, LeastOutstandingWork) {
  Router r;
  auto d = r.Pick({W("a", 3), W("b", 1), W("c", 2)}, "m", {1, 2}, {});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->address, "b");
}

TEST(RouterTest, SkipsUnhealthyDrainingExcludedAndOtherModels) {
  Router r;
  WorkerState draining = W("d", 0);
  draining.draining = true;
  auto d = r.Pick({W("a", 0, false), draining, W("b", 5), W("c", 0, true, {"other"}), W("e", 0)}, "m", {}, {"e"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->address, "b");
}

TEST(RouterTest, NoWorkerIsUnavailable) {
  Router r;
  auto d = r.Pick({W("a", 0, false)}, "m", {}, {});
  EXPECT_TRUE(absl::IsUnavailable(d.status()));
  auto e = r.Pick({W("a", 0)}, "unknown", {}, {});
  EXPECT_TRUE(absl::IsUnavailable(e.status()));
}

TEST(RouterTest, SharedLongPrefixGoesToTheSameWorker) {
  Router r;
  auto first = r.Pick({W("a", 0), W("b", 0)}, "m", Prompt(64, 1), {});
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->affinity);
  // The other worker is now a little less loaded, but the prefix is cached on the first.
  std::vector<int32_t> longer = Prompt(64, 1);
  longer.push_back(7);
  longer.push_back(8);
  WorkerState a = W("a", first->address == "a" ? 1 : 0), b = W("b", first->address == "b" ? 1 : 0);
  auto second = r.Pick({a, b}, "m", longer, {});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->address, first->address);
  EXPECT_TRUE(second->affinity);
  EXPECT_GE(second->affinity_tokens, 32);
}

TEST(RouterTest, AffinityYieldsWhenThatWorkerIsOverloaded) {
  RouterOptions o;
  o.affinity_slack = 2;
  Router r(o);
  auto first = r.Pick({W("a", 0), W("b", 5)}, "m", Prompt(48, 2), {});
  ASSERT_EQ(first->address, "a");
  auto second = r.Pick({W("a", 10), W("b", 0)}, "m", Prompt(48, 2), {});
  EXPECT_EQ(second->address, "b");
  EXPECT_FALSE(second->affinity);
}

TEST(RouterTest, ShortPromptsHaveNoAffinityAndForgetDropsEntries) {
  Router r;
  (void)r.Pick({W("a", 0)}, "m", Prompt(10, 3), {});  // only its effect on the affinity table matters
  EXPECT_EQ(r.entries(), 0u);
  (void)r.Pick({W("a", 0)}, "m", Prompt(64, 3), {});
  EXPECT_GT(r.entries(), 0u);
  r.Forget("a");
  EXPECT_EQ(r.entries(), 0u);
}

TEST(WorkerTableTest, RegistrationHeartbeatsAndExpiry) {
  WorkerTable t;
  absl::Time now = absl::Now();
  EXPECT_FALSE(t.Heartbeat("w:1", {"m"}, 3, now));  // unknown: register first
  t.Register("w:1", {"m"}, now);
  EXPECT_TRUE(t.Heartbeat("w:1", {"m"}, 3, now + absl::Seconds(1)));
  auto snap = t.Snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_TRUE(snap[0].routable());
  EXPECT_EQ(snap[0].load(), 3);
  EXPECT_TRUE(t.ExpireHeartbeats(now + absl::Seconds(3), absl::Seconds(5)).empty());
  auto gone = t.ExpireHeartbeats(now + absl::Seconds(10), absl::Seconds(5));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_TRUE(t.Snapshot().empty());
}

TEST(WorkerTableTest, StaticWorkersStayAndFailuresTakeThemOutOfRouting) {
  WorkerTable t;
  t.Add("s:1", kSourceStatic);
  std::vector<std::string> models = {"m"};
  t.SetHealth("s:1", true, &models);
  EXPECT_TRUE(t.Snapshot()[0].routable());
  t.MarkFailed("s:1");
  EXPECT_FALSE(t.Snapshot()[0].routable());
  EXPECT_TRUE(t.ExpireHeartbeats(absl::Now() + absl::Hours(1), absl::Seconds(1)).empty());
  t.Acquire("s:1");
  EXPECT_EQ(t.Snapshot()[0].outstanding, 1);
  t.Release("s:1");
  t.Release("s:1");
  EXPECT_EQ(t.Snapshot()[0].outstanding, 0);
}

TEST(WorkerTableTest, DeregisterStopsRouting) {
  WorkerTable t;
  t.Register("w:1", {"m"}, absl::Now());
  t.Acquire("w:1");
  EXPECT_TRUE(t.Deregister("w:1"));
  auto snap = t.Snapshot();
  ASSERT_EQ(snap.size(), 1u);  // kept while work is outstanding
  EXPECT_FALSE(snap[0].routable());
  t.Release("w:1");
  t.ExpireHeartbeats(absl::Now(), absl::Seconds(5));
  EXPECT_TRUE(t.Snapshot().empty());
}

// A rolling restart on a fixed address: the old process deregisters (no new
// work while its streams drain), the new one registers and takes traffic; the
// pool sees a new registration count and resets the channel's backoff.
TEST(WorkerTableTest, WorkerRestartedAtTheSameAddressRegistersAgain) {
  WorkerTable t;
  Router router;
  EXPECT_EQ(t.Registrations("w:1"), 0);
  t.Register("w:1", {"m"}, absl::Now());
  t.Register("w:2", {"m"}, absl::Now());
  EXPECT_EQ(t.Registrations("w:1"), 1);
  t.Acquire("w:1");
  EXPECT_TRUE(t.Deregister("w:1"));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(router.Pick(t.Snapshot(), "m", {1, 2, 3}, {})->address, "w:2");
  t.Release("w:1");
  t.Register("w:1", {"m"}, absl::Now());
  EXPECT_EQ(t.Registrations("w:1"), 2);
  t.Acquire("w:2");
  EXPECT_EQ(router.Pick(t.Snapshot(), "m", {1, 2, 3}, {})->address, "w:1");
}

}  // namespace
}  // namespace llmesh::gateway
