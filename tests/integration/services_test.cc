// Every service binary starts on an ephemeral port, reports SERVING over
// grpc.health.v1, and exits cleanly (code 0) on SIGTERM and on SIGINT.
#include <signal.h>

#include <gtest/gtest.h>

#include "service_process.h"

namespace llmesh::testing {
namespace {

struct Case {
  std::string binary;
  std::string service;  // full gRPC name it must report in health
  std::vector<std::string> args;
};

std::vector<Case> Cases() {
  std::string models = std::string(LLMESH_SHARED_DIR) + "/models";
  return {
      {"llmesh-tokenizer", "llmesh.v1.TokenizerService", {"--model-dir", models}},
      {"llmesh-engine", "llmesh.v1.EngineService", {"--model-dir", models, "--model", "stories260K", "--kv-budget-mb", "8"}},
      {"llmesh-rag", "llmesh.v1.RagService", {}},
      {"llmesh-agent", "llmesh.v1.AgentService", {}},
      // An ephemeral HTTP port too, so parallel runs never collide on 8080.
      {"llmesh-gateway", "llmesh.v1.Gateway", {"--http-listen", "127.0.0.1:0"}},
  };
}

class ServiceLifecycle : public ::testing::TestWithParam<Case> {};

TEST_P(ServiceLifecycle, ServesHealthAndStopsCleanlyOnSigterm) {
  const Case& c = GetParam();
  auto svc = StartService(std::string(LLMESH_BIN_DIR) + "/" + c.binary, c.args);
  ASSERT_TRUE(svc.ok()) << svc.status();
  ASSERT_TRUE(WaitForServing(svc->address(), absl::Seconds(30)).ok());
  EXPECT_EQ(*HealthStatus(svc->address(), c.service), "SERVING");
  svc->process->Signal(SIGTERM);
  auto code = svc->process->Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok()) << c.binary << " did not exit after SIGTERM";
  EXPECT_EQ(*code, 0);
}

TEST_P(ServiceLifecycle, StopsCleanlyOnSigint) {
  const Case& c = GetParam();
  auto svc = StartService(std::string(LLMESH_BIN_DIR) + "/" + c.binary, c.args);
  ASSERT_TRUE(svc.ok()) << svc.status();
  ASSERT_TRUE(WaitForServing(svc->address(), absl::Seconds(30)).ok());
  svc->process->Signal(SIGINT);
  auto code = svc->process->Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST_P(ServiceLifecycle, BadFlagExitsWithUsageError) {
  const Case& c = GetParam();
  auto proc = Subprocess::Start({std::string(LLMESH_BIN_DIR) + "/" + c.binary, "--no-such-flag=1"},
                                MakeTempDir("badflag") + "/log.txt");
  ASSERT_TRUE(proc.ok());
  auto code = (*proc)->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
}

INSTANTIATE_TEST_SUITE_P(AllServices, ServiceLifecycle, ::testing::ValuesIn(Cases()),
                         [](const auto& info) {
                           std::string name = info.param.binary.substr(7);  // drop "llmesh-"
                           return name;
                         });

}  // namespace
}  // namespace llmesh::testing
