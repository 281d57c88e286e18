// `llmesh scale` against a running `llmesh up`: under a steady stream of chat
// requests through the gateway, a third engine worker is added (it registers
// and takes traffic), one is removed (it deregisters and drains), and the
// stack shuts down with nothing left running and no request failed. Plus the
// errors: no stack running, a bad N, a service that does not scale.
#include <sys/prctl.h>

#include <gtest/gtest.h>

#include "chat_load.h"
#include "launcher_stack.h"
#include "stack_probe.h"

namespace llmesh::testing {
namespace {

TEST(ScaleTest, AddsAndRemovesEngineWorkersWhileTheStackRuns) {
  // Whatever the launcher leaves behind becomes our child: "nothing left running" is checkable.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  LauncherStack s;
  s.Write(std::string(LLMESH_SHARED_DIR) + "/models", 2);
  ASSERT_TRUE(s.Start().ok()) << ReadFile(s.log);
  auto stub = v1::Gateway::NewStub(rpc::CreateChannel(s.gateway()));
  ASSERT_TRUE(WaitForGatewayWorkers(*stub, 2));

  // A streamed chat through the gateway.
  ChatOutcome first = StreamChat(*stub, 24);
  ASSERT_TRUE(first.ok()) << first.status.error_message();

  auto before = s.Engines();
  ASSERT_EQ(before.size(), 2u);
  ChatLoad load(s.gateway(), 3, 32);
  ASSERT_TRUE(load.WaitForMore(3, absl::Seconds(60)));

  // Up to three: the new worker registers with the gateway and takes traffic.
  CommandResult up3 = RunLlmesh({"scale", "engine", "3", "--config", s.config});
  ASSERT_EQ(up3.code, 0) << up3.output;
  EXPECT_NE(up3.output.find("started engine-3 on 127.0.0.1:"), std::string::npos) << up3.output;
  EXPECT_NE(up3.output.find("engine workers: 2 -> 3"), std::string::npos) << up3.output;
  auto after = s.Engines();
  ASSERT_EQ(after.size(), 3u) << up3.output;
  ASSERT_TRUE(after.count("engine-3"));
  for (const auto& [name, v] : before) EXPECT_EQ(after[name].second, v.second) << name << " was restarted";
  const std::string third = after["engine-3"].first;
  const int third_pid = after["engine-3"].second;
  EXPECT_TRUE(WaitForGatewayWorkers(*stub, 3));
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (EngineStatsNow(third).requests_total() <= 0 && absl::Now() < deadline)
    ASSERT_TRUE(load.WaitForMore(1, absl::Seconds(60)));
  EXPECT_GT(EngineStatsNow(third).requests_total(), 0) << "the third worker took no traffic";

  // Nothing to do, and the errors.
  CommandResult same = RunLlmesh({"scale", "engine", "3", "--run-dir", s.run_dir});
  EXPECT_EQ(same.code, 0) << same.output;
  EXPECT_NE(same.output.find("nothing changed"), std::string::npos) << same.output;
  CommandResult zero = RunLlmesh({"scale", "engine", "0", "--run-dir", s.run_dir});
  EXPECT_EQ(zero.code, 2);
  EXPECT_NE(zero.output.find("N must be a whole number in 1..16 (got '0')"), std::string::npos) << zero.output;
  CommandResult words = RunLlmesh({"scale", "engine", "many", "--run-dir", s.run_dir});
  EXPECT_EQ(words.code, 2);
  CommandResult rag = RunLlmesh({"scale", "rag", "2", "--run-dir", s.run_dir});
  EXPECT_EQ(rag.code, 2);
  EXPECT_NE(rag.output.find("only engine workers can be scaled"), std::string::npos) << rag.output;

  // Back to two: the newest worker deregisters, drains and exits 0; the rest keep serving.
  CommandResult down = RunLlmesh({"scale", "engine", "2", "--run-dir", s.run_dir});
  ASSERT_EQ(down.code, 0) << down.output;
  EXPECT_NE(down.output.find("stopped engine-3 (exit 0)"), std::string::npos) << down.output;
  EXPECT_NE(down.output.find("engine workers: 3 -> 2"), std::string::npos) << down.output;
  EXPECT_FALSE(Alive(third_pid)) << "engine-3 still runs";  // the launcher reaped it
  EXPECT_EQ(s.Engines().size(), 2u);
  EXPECT_TRUE(WaitForGatewayWorkers(*stub, 2));
  ASSERT_TRUE(load.WaitForMore(6, absl::Seconds(60)));

  load.Stop();
  std::vector<std::string> failures = load.failures();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures[0];
  EXPECT_GT(load.ok(), 10);
  std::printf("requests: %lld ok, %zu failed\n", static_cast<long long>(load.ok()), failures.size());

  // Shut down: every process of the stack is gone, nothing was orphaned.
  std::vector<int> pids = ChildrenOf(s.up->pid());
  EXPECT_EQ(pids.size(), 6u);  // tokenizer, 2 engines, rag, agent, gateway
  auto code = s.Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << ReadFile(s.log);
  for (int pid : pids) EXPECT_FALSE(Alive(pid)) << "pid " << pid << " still runs";
  EXPECT_TRUE(ChildrenOf(getpid()).empty()) << "orphaned processes left";
  for (int port : s.service_ports())
    EXPECT_FALSE(HealthStatus(absl::StrCat("127.0.0.1:", port), "", absl::Milliseconds(300)).ok()) << port;

  // No stack: a clear error.
  CommandResult gone = RunLlmesh({"scale", "engine", "3", "--run-dir", s.run_dir});
  EXPECT_EQ(gone.code, 1);
  EXPECT_NE(gone.output.find("no llmesh stack is running with run directory " + s.run_dir), std::string::npos)
      << gone.output;
}

TEST(ScaleTest, NoStackRunningIsAClearError) {
  std::string empty = MakeTempDir("norun");
  CommandResult r = RunLlmesh({"scale", "engine", "2", "--run-dir", empty});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("no llmesh stack is running"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("llmesh up"), std::string::npos) << r.output;
  CommandResult ps = RunLlmesh({"ps", "--run-dir", empty});
  EXPECT_EQ(ps.code, 1);
}

}  // namespace
}  // namespace llmesh::testing
