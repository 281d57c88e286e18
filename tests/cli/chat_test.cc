// `llmesh chat` as a user runs it, over real processes on 127.0.0.1: a
// tokenizer, the gateway and one engine worker serving stories260K (a
// 512-token context). Its stdin is a pipe the test writes; stdout and stderr
// go to files.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "gateway_stack.h"

namespace llmesh::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// `llmesh args...` with stdin from a pipe.
class Cli {
 public:
  explicit Cli(const std::vector<std::string>& args) : args_(args) {
    dir_ = MakeTempDir("chat");
    // Everything the child needs is made before fork: the test has gRPC
    // threads, and the child may not allocate.
    const std::string out_path = dir_ + "/stdout", err_path = dir_ + "/stderr";
    std::string bin = Bin("llmesh");
    std::vector<char*> argv = {bin.data()};
    for (auto& a : args_) argv.push_back(a.data());
    argv.push_back(nullptr);
    int in[2];
    if (pipe(in) != 0) return;
    signal(SIGPIPE, SIG_IGN);  // a chat that ended early fails the test, not the test process
    pid_ = fork();
    if (pid_ == 0) {
      signal(SIGPIPE, SIG_DFL);
      int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(in[0], STDIN_FILENO);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      close(in[0]);
      close(in[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    stdin_ = in[1];
  }
  ~Cli() {
    CloseStdin();
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  void Write(const std::string& text) { EXPECT_EQ(write(stdin_, text.data(), text.size()), ssize_t(text.size())); }
  void CloseStdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // The exit code, or -1 while it still runs after `timeout`.
  int Wait(absl::Duration timeout) {
    absl::Time until = absl::Now() + timeout;
    while (!exited_) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (absl::Now() >= until) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exit_code_;
  }
  std::string out() const { return ReadFile(dir_ + "/stdout"); }
  std::string err() const { return ReadFile(dir_ + "/stderr"); }

 private:
  std::vector<std::string> args_;
  std::string dir_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

class ChatTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new GatewayStack();
    absl::Status st = stack_->Start({});
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_TRUE(stack_->AddEngine().ok());
    ASSERT_TRUE(stack_->WaitForWorkers(1).ok());
  }
  static void TearDownTestSuite() { delete stack_; }

  // Chat streams the gateway finished with `status`, from its metrics.
  static int ChatRequests(const std::string& status) {
    httplib::Client cli("127.0.0.1", stack_->http_port);
    auto r = cli.Get("/metrics");
    if (!r) return -1;
    std::smatch m;
    std::regex re("llmesh_gateway_requests_total\\{route=\"grpc:Chat\",status=\"" + status + "\"\\} (\\d+)");
    return std::regex_search(r->body, m, re) ? std::stoi(m[1]) : 0;
  }

  static inline GatewayStack* stack_ = nullptr;
};

// Issue #14: from the third turn on every answer failed with "prompt has 563
// tokens; the context holds 512" until /reset.
TEST_F(ChatTest, TwentyTurnsOnTheDefaultModelAllGetAnAnswer) {
  const int ok_before = ChatRequests("OK");
  Cli chat({"chat", "--gateway", stack_->gateway.address(), "--system", "You are a storyteller.", "--temperature",
            "0.8"});
  for (int turn = 1; turn <= 20; ++turn) chat.Write("Tell me story number " + std::to_string(turn) + ".\n");
  chat.Write("/quit\n");
  ASSERT_EQ(chat.Wait(absl::Seconds(240)), 0) << chat.err();
  EXPECT_EQ(chat.err().find("error"), std::string::npos) << chat.err();
  EXPECT_EQ(ChatRequests("OK") - ok_before, 20) << chat.err();
  EXPECT_EQ(ChatRequests("INVALID_ARGUMENT"), 0);
  EXPECT_FALSE(chat.out().empty());
}

TEST_F(ChatTest, CtrlCAtThePromptGivesAFreshPromptAndCtrlDLeaves) {
  const int ok_before = ChatRequests("OK");
  Cli chat({"chat", "--gateway", stack_->gateway.address(), "--max-tokens", "16"});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // waiting at the prompt
  chat.Write("half a line");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  chat.Signal(SIGINT);
  EXPECT_EQ(chat.Wait(absl::Milliseconds(500)), -1) << "Ctrl-C at the prompt ended the chat: " << chat.err();
  chat.Signal(SIGINT);
  EXPECT_EQ(chat.Wait(absl::Milliseconds(500)), -1) << chat.err();
  chat.Write("Once upon a time\n");
  chat.CloseStdin();  // Ctrl-D
  ASSERT_EQ(chat.Wait(absl::Seconds(60)), 0) << chat.err();
  EXPECT_EQ(chat.err().find("error"), std::string::npos) << chat.err();
  EXPECT_EQ(ChatRequests("OK") - ok_before, 1);  // the half line went with the Ctrl-C
}

TEST_F(ChatTest, AMessageTooLongForTheContextIsRefusedAndTheChatGoesOn) {
  Cli chat({"chat", "--gateway", stack_->gateway.address(), "--max-tokens", "16"});
  std::string huge;
  for (int i = 0; i < 200; ++i) huge += "a long story ";
  chat.Write(huge + "\nOnce upon a time\n/quit\n");
  ASSERT_EQ(chat.Wait(absl::Seconds(60)), 0) << chat.err();
  EXPECT_NE(chat.err().find("the context holds 512"), std::string::npos) << chat.err();
  EXPECT_EQ(chat.err().find("error", chat.err().find('\n')), std::string::npos) << chat.err();
}

TEST(ChatHelpTest, HelpNamesTheCommandsAtThePrompt) {
  Cli help({"chat", "--help"});
  help.CloseStdin();
  ASSERT_EQ(help.Wait(absl::Seconds(20)), 0);
  EXPECT_NE(help.out().find("/reset"), std::string::npos) << help.out();
  EXPECT_NE(help.out().find("/quit"), std::string::npos) << help.out();
  EXPECT_NE(help.out().find("Ctrl-C"), std::string::npos) << help.out();
}

}  // namespace
}  // namespace llmesh::testing
