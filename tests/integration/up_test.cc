// `llmesh up`: the whole stack starts as separate processes, answers health,
// and stops cleanly on Ctrl-C; a taken port or a missing model fails fast.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "launcher_stack.h"
#include "service_process.h"

namespace llmesh::testing {
namespace {

struct Stack {
  std::string dir, config, log;
  std::vector<int> ports;  // tokenizer, engine-1, engine-2, rag, agent, gateway
};

Stack WriteStack(const std::string& model_dir) {
  Stack s;
  s.dir = MakeTempDir("up");
  // Engine replicas take consecutive ports: find a base whose next port is free too.
  int engine = FreePort();
  while (engine >= 65535) engine = FreePort();
  s.ports = {FreePort(), engine, engine + 1, FreePort(), FreePort(), FreePort()};
  s.config = s.dir + "/stack.yaml";
  s.log = s.dir + "/up.log";
  std::ofstream(s.config) << absl::StrCat(
      "common: {model_dir: \"", model_dir, "\", model: stories260K, log_level: warn}\n",
      "stack: {run_dir: \"", s.dir, "/run\", engine_replicas: 2, ready_timeout: 60s}\n",
      "tokenizer: {listen: 127.0.0.1:", s.ports[0], "}\n", "engine: {listen: 127.0.0.1:", s.ports[1], "}\n",
      "rag: {listen: 127.0.0.1:", s.ports[3], ", data_dir: \"", s.dir, "/rag\"}\n",
      "agent: {listen: 127.0.0.1:", s.ports[4], ", data_dir: \"", s.dir, "/agent\"}\n",
      "gateway: {listen: 127.0.0.1:", s.ports[5], ", http_listen: 127.0.0.1:", FreePort(), "}\n");
  return s;
}

TEST(UpTest, StartsEveryServiceAndStopsThemAllOnCtrlC) {
  Stack s = WriteStack(std::string(LLMESH_SHARED_DIR) + "/models");
  auto up = Subprocess::Start({LlmeshBin(), "up", "--config", s.config}, s.log);
  ASSERT_TRUE(up.ok());
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (ReadFile(s.log).find("Press Ctrl-C") == std::string::npos) {
    ASSERT_TRUE((*up)->running()) << ReadFile(s.log);
    ASSERT_LT(absl::Now(), deadline) << ReadFile(s.log);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int port : s.ports) EXPECT_EQ(*HealthStatus(absl::StrCat("127.0.0.1:", port)), "SERVING") << port;

  (*up)->Signal(SIGINT);
  auto code = (*up)->Wait(absl::Seconds(60));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << ReadFile(s.log);
  EXPECT_NE(ReadFile(s.log).find("stopped"), std::string::npos);
  // Nothing left running: every port is closed.
  for (int port : s.ports)
    EXPECT_FALSE(HealthStatus(absl::StrCat("127.0.0.1:", port), "", absl::Milliseconds(300)).ok()) << port;
}

TEST(UpTest, FailsFastWhenAPortIsTaken) {
  Stack s = WriteStack(std::string(LLMESH_SHARED_DIR) + "/models");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(s.ports[3]);  // rag's
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  auto up = Subprocess::Start({LlmeshBin(), "up", "--config", s.config}, s.log);
  ASSERT_TRUE(up.ok());
  auto code = (*up)->Wait(absl::Seconds(20));
  close(fd);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
  EXPECT_NE(ReadFile(s.log).find(absl::StrCat("port ", s.ports[3], " for rag is already in use")), std::string::npos)
      << ReadFile(s.log);
}

TEST(UpTest, FailsFastWhenTheModelIsMissing) {
  Stack s = WriteStack(MakeTempDir("empty-models"));
  auto up = Subprocess::Start({LlmeshBin(), "up", "--config", s.config}, s.log);
  ASSERT_TRUE(up.ok());
  auto code = (*up)->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
  EXPECT_NE(ReadFile(s.log).find("model 'stories260K' not found"), std::string::npos) << ReadFile(s.log);
}

}  // namespace
}  // namespace llmesh::testing
