// A rolling restart of the engine workers under steady load loses no request:
// a stopping worker deregisters from the gateway first (no new requests go to
// it), finishes the streams it has, then exits; a request that reached it in
// between is retried on another worker before its first token.
//  - SIGTERM, then a restart on the same port, for each worker in turn (the
//    stack has one worker fewer meanwhile);
//  - `llmesh restart engine` on a running `llmesh up` (a replacement first,
//    then the old worker stops).
#include <signal.h>

#include <gtest/gtest.h>

#include "chat_load.h"
#include "gateway_stack.h"
#include "launcher_stack.h"
#include "stack_probe.h"

namespace llmesh::testing {
namespace {

// Waits until `engine` runs at least one sequence (a stream is in flight there).
bool WaitForRunning(const std::string& engine, absl::Duration timeout = absl::Seconds(30)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (EngineStatsNow(engine).running_sequences() > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

bool WaitForTraffic(const std::string& engine, ChatLoad& load, absl::Duration timeout = absl::Seconds(60)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (EngineStatsNow(engine).requests_total() > 0) return true;
    if (!load.WaitForMore(1, timeout)) return false;
  }
  return false;
}

void ExpectNoFailures(ChatLoad& load) {
  load.Stop();
  std::vector<std::string> failures = load.failures();
  EXPECT_TRUE(failures.empty()) << failures.size() << " requests failed; first: " << failures[0];
  EXPECT_GT(load.ok(), 10);
  std::printf("requests: %lld ok, %zu failed\n", static_cast<long long>(load.ok()), failures.size());
}

TEST(RollingRestartTest, SigtermAndRestartEachWorkerInTurnLosesNoRequest) {
  GatewayStack stack;
  ASSERT_TRUE(stack.Start({"--model-dir", ModelDir()}).ok());
  ASSERT_TRUE(stack.AddEngine().ok());
  ASSERT_TRUE(stack.AddEngine().ok());
  ASSERT_TRUE(stack.WaitForWorkers(2).ok());

  ChatLoad load(stack.gateway.address(), 4, 192);
  ASSERT_TRUE(load.WaitForMore(4, absl::Seconds(60)));
  for (size_t i = 0; i < 2; ++i) {
    Service& old = *stack.engines[i];
    int port = old.port;
    // Stopped while streams run on it: they finish, nothing new arrives.
    ASSERT_TRUE(WaitForRunning(old.address()));
    old.process->Signal(SIGTERM);
    auto code = old.process->Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0);
    ASSERT_TRUE(load.WaitForMore(2, absl::Seconds(60)));  // served by the other worker meanwhile

    // The same address again: it registers and takes traffic.
    auto fresh = StartService(Bin("llmesh-engine"),
                              {"--model-dir", ModelDir(), "--model", "stories260K", "--threads", "1", "--kv-budget-mb",
                               "16", "--gateway", stack.gateway.address(), "--log-level", "warn", "--listen",
                               absl::StrCat("127.0.0.1:", port)});
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    *stack.engines[i] = std::move(*fresh);
    ASSERT_TRUE(stack.WaitForWorkers(2).ok());
    EXPECT_TRUE(WaitForTraffic(stack.engines[i]->address(), load)) << "restarted worker " << i << " took no traffic";
  }
  ASSERT_TRUE(load.WaitForMore(4, absl::Seconds(60)));
  ExpectNoFailures(load);
}

// `llmesh restart engine`, as the launcher does it, twice under load: with
// two workers (each stops, drains and comes back on its own port while the
// other serves), then with one (a stand-in serves while it restarts).
TEST(RollingRestartTest, LlmeshRestartEngineLosesNoRequest) {
  LauncherStack s;
  s.Write(std::string(LLMESH_SHARED_DIR) + "/models", 2);
  ASSERT_TRUE(s.Start().ok()) << ReadFile(s.log);
  auto stub = v1::Gateway::NewStub(rpc::CreateChannel(s.gateway()));
  ASSERT_TRUE(WaitForGatewayWorkers(*stub, 2));
  ChatLoad load(s.gateway(), 4, 192);
  ASSERT_TRUE(load.WaitForMore(4, absl::Seconds(60)));

  for (int engines : {2, 1}) {
    SCOPED_TRACE(absl::StrCat(engines, " engine workers"));
    if (engines == 1) {
      ASSERT_EQ(RunLlmesh({"scale", "engine", "1", "--run-dir", s.run_dir}).code, 0);
    }
    auto before = s.Engines();
    ASSERT_EQ(before.size(), static_cast<size_t>(engines));
    CommandResult r = RunLlmesh({"restart", "engine", "--run-dir", s.run_dir});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find(absl::StrCat("restarted ", engines, " engine workers; ", engines, " running")),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("killing"), std::string::npos) << r.output;
    if (engines == 1) {
      EXPECT_NE(r.output.find("stopped engine-2 (exit 0)"), std::string::npos) << r.output;  // the stand-in
    }

    // Same names on the same ports (rag and agent may name them), new processes, all taking traffic.
    auto after = s.Engines();
    ASSERT_EQ(after.size(), before.size()) << r.output;
    for (const auto& [name, v] : before) {
      ASSERT_TRUE(after.count(name)) << name << "\n" << r.output;
      EXPECT_EQ(after[name].first, v.first) << name << " moved";
      EXPECT_NE(after[name].second, v.second) << name << " was not restarted";
      EXPECT_FALSE(Alive(v.second)) << name << "'s old process still runs";
      EXPECT_TRUE(WaitForTraffic(after[name].first, load)) << name << " took no traffic";
    }
    EXPECT_TRUE(WaitForGatewayWorkers(*stub, engines));
    ASSERT_TRUE(load.WaitForMore(4, absl::Seconds(60)));
  }
  ExpectNoFailures(load);

  auto code = s.Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << ReadFile(s.log);
}

}  // namespace
}  // namespace llmesh::testing
