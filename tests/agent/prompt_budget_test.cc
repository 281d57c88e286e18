// Each turn's prompt within the model's context: FitPrompt on its own, then
// runs against a scripted model whose context is stories260K's 512 tokens
// (issue #14: the default max_tokens of 1024 was sent as is, and later turns
// outgrew the context).
#include "llmesh/agent/prompt_budget.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fakes.h"
#include "llmesh/agent/agent.h"

namespace llmesh::agent {
namespace {

using testing::Answer;
using testing::CallTool;
using testing::FakeTool;
using testing::ScriptedBackend;
using Kind = v1::AgentStepKind;

v1::ChatMessage Msg(const std::string& role, const std::string& content, const std::string& name = "") {
  v1::ChatMessage m;
  m.set_role(role);
  m.set_content(content);
  m.set_name(name);
  return m;
}

const PromptCounter kCount = [](const std::vector<v1::ChatMessage>& m) -> absl::StatusOr<int32_t> {
  return ScriptedBackend::Tokens(m);
};

std::string Joined(const std::vector<v1::ChatMessage>& messages) {
  std::string out;
  for (const auto& m : messages) absl::StrAppend(&out, m.role(), ":", m.content(), "|");
  return out;
}

// An earlier run (2 messages), this run's task, then three steps.
std::vector<v1::ChatMessage> History(size_t observation_bytes) {
  return {Msg("user", "old question"),
          Msg("assistant", R"({"final_answer":"old answer"})"),
          Msg("user", "the task"),
          Msg("assistant", R"({"tool":"calc","arguments":{}})"),
          Msg("tool", "first " + std::string(observation_bytes, 'a'), "calc"),
          Msg("assistant", R"({"tool":"clock","arguments":{}})"),
          Msg("tool", "second " + std::string(observation_bytes, 'b'), "clock"),
          Msg("assistant", R"({"tool":"calc","arguments":{}})"),
          Msg("tool", "third " + std::string(observation_bytes, 'c'), "calc")};
}

TEST(FitPromptTest, KeepsEverythingThatFits) {
  auto fit = FitPrompt("sys", History(10), 2, 64, 10000, kCount);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->dropped, 0u);
  EXPECT_EQ(fit->tokens, kCount(fit->messages).value());
  EXPECT_TRUE(absl::StrContains(Joined(fit->messages), "old question"));
}

TEST(FitPromptTest, DropsEarlierRunsThenTheOldestStepsAndNamesThem) {
  const auto history = History(200);  // each observation ~55 tokens
  const int32_t full = kCount(FitPrompt("sys", history, 2, 64, 1 << 20, kCount)->messages).value();
  // Room for all but the earlier run.
  auto fit = FitPrompt("sys", history, 2, 64, full - 10, kCount);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_GE(fit->dropped, 1u);
  EXPECT_FALSE(absl::StrContains(Joined(fit->messages), "old"));
  EXPECT_TRUE(absl::StrContains(Joined(fit->messages), "first"));
  // Room for the task and the latest two steps only.
  fit = FitPrompt("sys", history, 2, 64, full - 70, kCount);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_LE(fit->tokens, full - 70);
  const std::string text = Joined(fit->messages);
  EXPECT_FALSE(absl::StrContains(text, "first")) << text;
  EXPECT_TRUE(absl::StrContains(text, "second")) << text;
  EXPECT_TRUE(absl::StrContains(text, "the task\n\n(1 earlier step left out to fit the context; tools called: calc)"))
      << text;
  EXPECT_EQ(fit->messages[0].role(), "system");
  EXPECT_EQ(fit->messages[1].role(), "user");
}

TEST(FitPromptTest, CutsTheLatestObservationWhenTheStepsAreGone) {
  auto fit = FitPrompt("sys", History(2000), 2, 64, 200, kCount);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_LE(fit->tokens, 200);
  EXPECT_GT(fit->observations_cut, 0u);
  const std::string text = Joined(fit->messages);
  EXPECT_TRUE(absl::StrContains(text, "the task")) << text;
  EXPECT_TRUE(absl::StrContains(text, "third ccc")) << text;
  EXPECT_TRUE(absl::StrContains(text, "[truncated]")) << text;
  EXPECT_TRUE(absl::StrContains(text, "3 earlier steps") || absl::StrContains(text, "2 earlier steps")) << text;
}

TEST(FitPromptTest, ATaskTooBigForTheContextIsOutOfRange) {
  std::vector<v1::ChatMessage> history = {Msg("user", std::string(4000, 'x'))};
  auto fit = FitPrompt("sys", history, 0, 64, 256, kCount);
  EXPECT_EQ(fit.status().code(), absl::StatusCode::kOutOfRange) << fit.status();
}

TEST(FitPromptTest, TheCountersErrorComesBack) {
  auto fit = FitPrompt("sys", History(10), 2, 64, 100,
                       [](const std::vector<v1::ChatMessage>&) -> absl::StatusOr<int32_t> {
                         return absl::UnavailableError("tokenizer: down");
                       });
  EXPECT_EQ(fit.status().code(), absl::StatusCode::kUnavailable);
}

class AgentContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            absl::StrCat("agent_ctx_", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                         ::getpid()))
               .string();
    std::filesystem::create_directories(dir_);
    options_.default_model = "tiny";  // default limits: max_tokens 1024
    auto s = AgentStore::Open(dir_ + "/agent.db");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    backend_.set_n_ctx(512);
    tool_ = std::make_shared<FakeTool>("echo", FakeTool::Mode::kEcho);
    ASSERT_TRUE(registry_.Add(tool_).ok());
    agent_ = std::make_unique<Agent>(options_, backend_, *store_, registry_, nullptr);
  }
  void TearDown() override {
    agent_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  absl::Status Run(const v1::AgentRunRequest& req, std::vector<v1::AgentStep>* steps) {
    RunEnv env;
    env.cancel = &cancel_;
    return agent_->Run(req, env, [steps](const v1::AgentStep& s) { steps->push_back(s); });
  }

  std::string dir_;
  AgentOptions options_;
  ScriptedBackend backend_;
  ToolRegistry registry_;
  std::shared_ptr<FakeTool> tool_;
  Cancellation cancel_;
  std::unique_ptr<AgentStore> store_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentContextTest, EveryTurnFitsTheContextAndKeepsTheTask) {
  // Each call's output (its arguments echoed) is ~300 tokens: two of them
  // alone outgrow the context.
  const std::string big = absl::StrCat(R"({"x":")", std::string(1200, 'z'), R"("})");
  for (int i = 0; i < 5; ++i) backend_.Push(CallTool("echo", big, 40));
  backend_.Push(Answer("done", 10));
  v1::AgentRunRequest req;
  req.set_input("the task");
  req.add_tools("echo");
  std::vector<v1::AgentStep> steps;
  absl::Status st = Run(req, &steps);
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps[steps.size() - 2].kind(), v1::AGENT_STEP_KIND_FINAL_ANSWER);
  auto reqs = backend_.requests();
  ASSERT_EQ(reqs.size(), 6u);
  for (const auto& r : reqs) {
    const int32_t prompt = ScriptedBackend::Tokens(r.messages);
    EXPECT_LE(prompt + r.max_tokens, 512) << Joined(r.messages);
    EXPECT_GE(r.max_tokens, 128);  // the reply keeps a quarter of the context
    EXPECT_EQ(r.messages[1].role(), "user");
    EXPECT_TRUE(absl::StartsWith(r.messages[1].content(), "the task")) << Joined(r.messages);
  }
  // The latest observation is in the last prompt, cut or whole.
  EXPECT_TRUE(absl::StrContains(reqs.back().messages.back().content(), "Result of echo (call_5)"))
      << Joined(reqs.back().messages);
}

TEST_F(AgentContextTest, ATaskTheContextCannotHoldEndsWithAnErrorStep) {
  v1::AgentRunRequest req;
  req.set_input(std::string(4000, 'x'));
  std::vector<v1::AgentStep> steps;
  absl::Status st = Run(req, &steps);
  EXPECT_TRUE(st.ok()) << st;  // a limit, like the others
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].kind(), v1::AGENT_STEP_KIND_ERROR);
  EXPECT_TRUE(absl::StrContains(steps[0].text(), "context of 512 tokens cannot hold")) << steps[0].text();
  EXPECT_EQ(steps[1].kind(), v1::AGENT_STEP_KIND_USAGE);
  EXPECT_TRUE(backend_.requests().empty());
}

TEST_F(AgentContextTest, AContextLengthFailureEndsWithAnErrorStep) {
  backend_.set_n_ctx(absl::UnavailableError("gateway: connection refused"));
  v1::AgentRunRequest req;
  req.set_input("hi");
  std::vector<v1::AgentStep> steps;
  absl::Status st = Run(req, &steps);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].kind(), v1::AGENT_STEP_KIND_ERROR);
  EXPECT_EQ(steps[0].text(), "model call failed: gateway: connection refused");
}

}  // namespace
}  // namespace llmesh::agent
