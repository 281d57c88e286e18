// `llmesh up`: the whole stack starts as separate processes, answers health,
// and stops cleanly on Ctrl-C; a taken port or a missing model fails fast.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "launcher_stack.h"
#include "llmesh/rpc/cluster_auth.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"
#include "service_process.h"

namespace llmesh::testing {
namespace {

struct Stack {
  std::string dir, config, log;
  std::vector<int> ports;  // tokenizer, engine-1, engine-2, rag, agent, gateway
};

Stack WriteStack(const std::string& model_dir, bool relative_data_dirs = false) {
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
      "rag: {listen: 127.0.0.1:", s.ports[3], ", data_dir: \"", relative_data_dirs ? "data" : s.dir, "/rag\"}\n",
      "agent: {listen: 127.0.0.1:", s.ports[4], ", data_dir: \"", relative_data_dirs ? "data" : s.dir, "/agent\"}\n",
      "gateway: {listen: 127.0.0.1:", s.ports[5], ", http_listen: 127.0.0.1:", FreePort(), "}\n");
  return s;
}

// Until the launcher says it is up; false if it exits or takes over 90 s.
bool WaitUntilUp(Subprocess& up, const std::string& log) {
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (ReadFile(log).find("Press Ctrl-C") == std::string::npos) {
    if (!up.running() || absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

TEST(UpTest, StartsEveryServiceAndStopsThemAllOnCtrlC) {
  Stack s = WriteStack(std::string(LLMESH_SHARED_DIR) + "/models");
  auto up = Subprocess::Start({LlmeshBin(), "up", "--config", s.config}, s.log);
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(WaitUntilUp(**up, s.log)) << ReadFile(s.log);
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

// Started with no cluster token configured, the launcher makes one for the
// run (owner-only file in the run directory) that the internal services
// require; relative data directories land in the run directory, not in the
// working tree.
TEST(UpTest, MakesAClusterTokenPerRunAndKeepsDataInTheRunDirectory) {
  Stack s = WriteStack(std::string(LLMESH_SHARED_DIR) + "/models", /*relative_data_dirs=*/true);
  std::string saved = getenv("LLMESH_CLUSTER_TOKEN") ? getenv("LLMESH_CLUSTER_TOKEN") : "";
  unsetenv("LLMESH_CLUSTER_TOKEN");
  unsetenv("LLMESH_CLUSTER_TOKEN_FILE");
  auto up = Subprocess::Start({LlmeshBin(), "up", "--config", s.config}, s.log);
  if (!saved.empty()) setenv("LLMESH_CLUSTER_TOKEN", saved.c_str(), 1);
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(WaitUntilUp(**up, s.log)) << ReadFile(s.log);
  std::string token_file = s.dir + "/run/cluster_token";
  struct stat st {};
  ASSERT_EQ(stat(token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string token(absl::StripAsciiWhitespace(ReadFile(token_file)));
  EXPECT_EQ(token.size(), 64u);
  EXPECT_NE(token, saved);
  EXPECT_TRUE(std::filesystem::is_directory(s.dir + "/run/data/rag"));
  EXPECT_TRUE(std::filesystem::is_directory(s.dir + "/run/data/agent"));

  auto tokenize = [&](const std::string& with) {
    auto stub = v1::TokenizerService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", s.ports[0]), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!with.empty()) ctx.AddMetadata(rpc::kClusterTokenKey, with);
    v1::TokenizeRequest req;
    req.set_model("stories260K");
    req.set_text("hello");
    v1::TokenizeResponse resp;
    return stub->Tokenize(&ctx, req, &resp).error_code();
  };
  EXPECT_EQ(tokenize(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(tokenize(token), grpc::StatusCode::OK);

  (*up)->Signal(SIGINT);
  auto code = (*up)->Wait(absl::Seconds(60));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << ReadFile(s.log);
}

TEST(UpTest, PrintsItsVersion) {
  CommandResult r = RunLlmesh({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("llmesh 0."), std::string::npos) << r.output;
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
