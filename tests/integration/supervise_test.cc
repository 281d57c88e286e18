// `llmesh up` supervises its processes: a crashed engine worker or gateway is
// restarted (with backoff) while the rest of the stack keeps serving; only
// Ctrl-C stops the stack. Before, one crash made the launcher stop everything.
#include <signal.h>

#include <gtest/gtest.h>

#include "chat_load.h"
#include "launcher_stack.h"
#include "stack_probe.h"

namespace llmesh::testing {
namespace {

// `llmesh ps`'s line for `name`.
std::string PsLine(LauncherStack& s, const std::string& name) {
  CommandResult r = RunLlmesh({"ps", "--run-dir", s.run_dir});
  for (absl::string_view line : absl::StrSplit(r.output, '\n'))
    if (absl::StartsWith(line, name + " ")) return std::string(line);
  return "";
}

// Waits until `name` runs again under a pid other than `old_pid`.
int WaitForRestart(LauncherStack& s, const std::string& name, int old_pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto ps = s.Ps();
    if (auto it = ps.find(name); it != ps.end() && it->second.second != old_pid) return it->second.second;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 0;
}

TEST(SuperviseTest, KilledEngineAndGatewayAreRestartedAndTheStackKeepsServing) {
  LauncherStack s;
  s.Write(std::string(LLMESH_SHARED_DIR) + "/models", 2);
  ASSERT_TRUE(s.Start().ok()) << ReadFile(s.log);
  auto stub = v1::Gateway::NewStub(rpc::CreateChannel(s.gateway()));
  ASSERT_TRUE(WaitForGatewayWorkers(*stub, 2));

  constexpr int kClients = 16;
  ChatLoad load(s.gateway(), kClients, 96);
  ASSERT_TRUE(load.WaitForMore(kClients, absl::Seconds(90)));

  // SIGKILL one engine under load: the streams it was running fail (those
  // before their first token are retried on the other), nothing else does.
  auto engines = s.Engines();
  ASSERT_EQ(engines.size(), 2u);
  const auto [victim_address, victim_pid] = engines.at("engine-1");
  size_t failed_before = load.failures().size();
  ASSERT_EQ(kill(victim_pid, SIGKILL), 0);
  ASSERT_TRUE(load.WaitForMore(2 * kClients, absl::Seconds(90)));  // the other worker serves meanwhile
  int new_pid = WaitForRestart(s, "engine-1", victim_pid, absl::Seconds(30));
  ASSERT_GT(new_pid, 0) << ReadFile(s.log);
  EXPECT_EQ(s.Engines().at("engine-1").first, victim_address);  // same address
  EXPECT_NE(PsLine(s, "engine-1").find("restarts 1"), std::string::npos) << PsLine(s, "engine-1");
  ASSERT_TRUE(WaitForGatewayWorkers(*stub, 2, absl::Seconds(60)));
  // It rejoined: the gateway routes to it again.
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (EngineStatsNow(victim_address).requests_total() <= 0 && absl::Now() < deadline)
    ASSERT_TRUE(load.WaitForMore(1, absl::Seconds(30)));
  EXPECT_GT(EngineStatsNow(victim_address).requests_total(), 0);
  size_t engine_failures = load.failures().size() - failed_before;
  // At most one in-flight stream per client was on the killed worker.
  EXPECT_LE(engine_failures, static_cast<size_t>(kClients));
  std::printf("engine SIGKILL: %zu requests failed, %lld ok so far\n", engine_failures,
              static_cast<long long>(load.ok()));

  // The gateway too: it comes back on its address and the engines register again.
  int gateway_pid = s.Ps().at("gateway").second;
  ASSERT_EQ(kill(gateway_pid, SIGKILL), 0);
  ASSERT_GT(WaitForRestart(s, "gateway", gateway_pid, absl::Seconds(30)), 0) << ReadFile(s.log);
  ASSERT_TRUE(WaitForGatewayWorkers(*stub, 2, absl::Seconds(60)));
  int64_t ok_before = load.ok();
  ASSERT_TRUE(load.WaitForMore(kClients, absl::Seconds(90)));
  EXPECT_GT(load.ok(), ok_before);
  load.Stop();

  EXPECT_NE(ReadFile(s.log).find("exited unexpectedly"), std::string::npos);
  auto code = s.Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << ReadFile(s.log);
}

}  // namespace
}  // namespace llmesh::testing
