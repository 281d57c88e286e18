// The agent loop against a scripted model: the steps a run streams, what each
// turn may say, every limit (steps, tokens, wall clock, the client's
// deadline), tool errors and timeouts as observations, cancellation during a
// generation and during a tool call, one run per session, request
// validation, and a session continued after the store is closed and opened
// again.
#include "llmesh/agent/agent.h"

#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fakes.h"
#include "nlohmann/json.hpp"

namespace llmesh::agent {
namespace {

using testing::Answer;
using testing::CallTool;
using testing::FakeRetriever;
using testing::FakeTool;
using testing::Failure;
using testing::Reply;
using testing::ScriptedBackend;
using Kind = v1::AgentStepKind;

class AgentLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            absl::StrCat("agent_loop_", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                         ::getpid()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    options_.default_model = "tiny";
    Reopen();
  }
  void TearDown() override {
    agent_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A fresh store (same file) and agent: what a restarted service has.
  void Reopen() {
    agent_.reset();
    store_.reset();
    auto s = AgentStore::Open(dir_ + "/agent.db");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    agent_ = std::make_unique<Agent>(options_, backend_, *store_, registry_, &retriever_);
  }

  struct Result {
    absl::Status status;
    std::vector<v1::AgentStep> steps;
    std::vector<Kind> kinds() const {
      std::vector<Kind> k;
      for (const auto& s : steps) k.push_back(s.kind());
      return k;
    }
    const v1::AgentStep* Find(Kind kind) const {
      for (const auto& s : steps)
        if (s.kind() == kind) return &s;
      return nullptr;
    }
  };

  Result Run(const v1::AgentRunRequest& req, absl::Time deadline = absl::InfiniteFuture()) {
    Result r;
    RunEnv env;
    env.deadline = deadline;
    env.cancel = &cancel_;
    env.request_id = "req-1";
    r.status = agent_->Run(req, env, [&r](const v1::AgentStep& s) { r.steps.push_back(s); });
    return r;
  }

  static v1::AgentRunRequest Req(const std::string& input, std::vector<std::string> tools = {},
                                 const std::string& choice = "") {
    v1::AgentRunRequest req;
    req.set_input(input);
    for (auto& t : tools) req.add_tools(t);
    req.set_tool_choice(choice);
    return req;
  }

  std::string dir_;
  AgentOptions options_;
  ScriptedBackend backend_;
  ToolRegistry registry_;
  FakeRetriever retriever_;
  Cancellation cancel_;
  std::unique_ptr<AgentStore> store_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentLoopTest, AnswersWithoutTools) {
  backend_.Push(Answer("hello there", 7));
  auto r = Run(Req("hi"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.kinds(), (std::vector<Kind>{v1::AGENT_STEP_KIND_FINAL_ANSWER, v1::AGENT_STEP_KIND_USAGE}));
  EXPECT_EQ(r.steps[0].text(), "hello there");
  EXPECT_FALSE(r.steps[0].session_id().empty());
  EXPECT_EQ(r.steps[0].step(), 1);
  EXPECT_EQ(r.steps[1].usage().completion_tokens(), 7);
  EXPECT_EQ(r.steps[1].usage().prompt_tokens(), 20);
  EXPECT_EQ(r.steps[1].usage().total_tokens(), 27);
  auto reqs = backend_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].model, "tiny");
  EXPECT_EQ(reqs[0].max_tokens, 1024);
  EXPECT_EQ(reqs[0].messages.back().content(), "hi");
  auto schema = nlohmann::json::parse(reqs[0].sampling.json_schema());
  EXPECT_EQ(schema["required"], nlohmann::json::array({"final_answer"}));
}

TEST_F(AgentLoopTest, ToolCallStreamsEveryStepThenAnswers) {
  backend_.Push(CallTool("calculator", R"j({"expression":"2*(3+4)"})j", 12, "multiply"));
  backend_.Push(Answer("14", 5));
  auto req = Req("what is 2*(3+4)?", {"calculator", "current_time"});
  req.mutable_sampling()->set_temperature(0.5f);
  auto r = Run(req);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.kinds(), (std::vector<Kind>{v1::AGENT_STEP_KIND_THOUGHT, v1::AGENT_STEP_KIND_TOOL_CALL,
                                          v1::AGENT_STEP_KIND_TOOL_RESULT, v1::AGENT_STEP_KIND_FINAL_ANSWER,
                                          v1::AGENT_STEP_KIND_USAGE}));
  EXPECT_EQ(r.steps[0].text(), "multiply");
  EXPECT_EQ(r.steps[1].tool_name(), "calculator");
  EXPECT_EQ(r.steps[1].tool_call_id(), "call_1");
  EXPECT_EQ(r.steps[1].arguments_json(), R"j({"expression":"2*(3+4)"})j");
  EXPECT_EQ(r.steps[2].text(), "14");
  EXPECT_FALSE(r.steps[2].tool_error());
  EXPECT_EQ(r.steps[2].tool_call_id(), "call_1");
  EXPECT_EQ(r.steps[3].step(), 2);
  EXPECT_EQ(r.steps[4].usage().completion_tokens(), 17);
  EXPECT_EQ(r.steps[4].usage().prompt_tokens(), 40);

  auto reqs = backend_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_FLOAT_EQ(reqs[0].sampling.temperature(), 0.5f);  // the caller's sampling, plus the schema
  EXPECT_EQ(reqs[1].max_tokens, 1024 - 12);               // what is left of the budget
  EXPECT_EQ(reqs[0].messages[0].content(), reqs[1].messages[0].content());  // same system message each turn
  EXPECT_TRUE(absl::StrContains(reqs[0].messages[0].content(), "calculator(expression: string)"));
  EXPECT_EQ(reqs[1].messages.back().role(), "user");
  EXPECT_EQ(reqs[1].messages.back().content(), "Result of calculator (call_1): 14");
}

TEST_F(AgentLoopTest, ForcedToolOnTheFirstTurnThenAuto) {
  backend_.Push(CallTool("current_time", "{}"));
  backend_.Push(Answer("it is now"));
  auto r = Run(Req("time?", {"calculator", "current_time"}, "current_time"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  auto reqs = backend_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  auto first = nlohmann::json::parse(reqs[0].sampling.json_schema());
  EXPECT_FALSE(first.contains("oneOf"));
  EXPECT_EQ(first["properties"]["tool"]["const"], "current_time");
  auto second = nlohmann::json::parse(reqs[1].sampling.json_schema());
  EXPECT_EQ(second["oneOf"].size(), 3u);  // both tools or an answer
  ASSERT_NE(r.Find(v1::AGENT_STEP_KIND_TOOL_RESULT), nullptr);
  EXPECT_TRUE(absl::StrContains(r.Find(v1::AGENT_STEP_KIND_TOOL_RESULT)->text(), "\"utc\""));
}

TEST_F(AgentLoopTest, RequiredAndNoneShapeTheFirstTurn) {
  backend_.Push(CallTool("calculator", R"({"expression":"1"})"));
  backend_.Push(Answer("1"));
  ASSERT_TRUE(Run(Req("x", {"calculator", "current_time"}, "required")).status.ok());
  auto required = nlohmann::json::parse(backend_.requests()[0].sampling.json_schema());
  EXPECT_EQ(required["oneOf"].size(), 2u);  // two tools, no answer
  EXPECT_EQ(required.dump().find("final_answer"), std::string::npos);

  backend_.Push(Answer("no tools used"));
  ASSERT_TRUE(Run(Req("x", {"calculator"}, "none")).status.ok());
  auto none = nlohmann::json::parse(backend_.requests()[2].sampling.json_schema());
  EXPECT_EQ(none["required"], nlohmann::json::array({"final_answer"}));
}

TEST_F(AgentLoopTest, LastTurnMayOnlyAnswer) {
  backend_.Push(CallTool("calculator", R"({"expression":"1+1"})"));
  backend_.Push(CallTool("calculator", R"({"expression":"2+2"})"));
  backend_.Push(Answer("done"));
  auto req = Req("x", {"calculator"});
  req.mutable_limits()->set_max_steps(3);
  auto r = Run(req);
  ASSERT_TRUE(r.status.ok()) << r.status;
  auto reqs = backend_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_TRUE(nlohmann::json::parse(reqs[1].sampling.json_schema()).contains("oneOf"));
  auto last = nlohmann::json::parse(reqs[2].sampling.json_schema());
  EXPECT_EQ(last["required"], nlohmann::json::array({"final_answer"}));
  EXPECT_EQ(r.steps.back().kind(), v1::AGENT_STEP_KIND_USAGE);
  EXPECT_EQ(r.steps[r.steps.size() - 2].kind(), v1::AGENT_STEP_KIND_FINAL_ANSWER);
}

TEST_F(AgentLoopTest, MaxStepsEndsARunThatNeverAnswers) {
  backend_.Push(CallTool("calculator", R"({"expression":"1+1"})"));
  auto req = Req("x", {"calculator"}, "calculator");
  req.mutable_limits()->set_max_steps(1);
  auto r = Run(req);
  ASSERT_TRUE(r.status.ok()) << r.status;  // a limit, not a failure
  EXPECT_EQ(r.kinds(), (std::vector<Kind>{v1::AGENT_STEP_KIND_THOUGHT, v1::AGENT_STEP_KIND_TOOL_CALL,
                                          v1::AGENT_STEP_KIND_TOOL_RESULT, v1::AGENT_STEP_KIND_ERROR,
                                          v1::AGENT_STEP_KIND_USAGE}));
  EXPECT_EQ(r.steps[3].text(), "max_steps (1) reached without a final answer");
  EXPECT_EQ(backend_.requests().size(), 1u);
}

TEST_F(AgentLoopTest, TokenBudgetIsSharedByTheRunsTurns) {
  backend_.Push(CallTool("calculator", R"({"expression":"1+1"})", 30));
  // The second turn is cut off by what is left of the budget.
  backend_.Push(Reply{absl::OkStatus(), R"({"final_answer":"the answer is a very lo)", v1::FINISH_REASON_LENGTH,
                      20, 20});
  auto req = Req("x", {"calculator"});
  req.mutable_limits()->set_max_tokens(50);
  auto r = Run(req);
  ASSERT_TRUE(r.status.ok()) << r.status;
  auto reqs = backend_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].max_tokens, 50);
  EXPECT_EQ(reqs[1].max_tokens, 20);
  const auto* err = r.Find(v1::AGENT_STEP_KIND_ERROR);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->text(), "token budget of 50 exhausted before the model finished its turn");
  EXPECT_EQ(r.steps.back().usage().completion_tokens(), 50);
  EXPECT_EQ(r.Find(v1::AGENT_STEP_KIND_FINAL_ANSWER), nullptr);
}

TEST_F(AgentLoopTest, ContextWindowFullIsReportedAsSuch) {
  backend_.Push(Reply{absl::OkStatus(), R"({"final_ans)", v1::FINISH_REASON_LENGTH, 500, 12});
  auto r = Run(Req("x"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_NE(r.Find(v1::AGENT_STEP_KIND_ERROR), nullptr);
  EXPECT_EQ(r.Find(v1::AGENT_STEP_KIND_ERROR)->text(), "the context window filled up before the model finished its turn");
}

TEST_F(AgentLoopTest, WallClockBudgetStopsASlowModel) {
  Reply slow = Answer("too late");
  slow.delay = absl::Seconds(30);
  backend_.Push(slow);
  auto req = Req("x");
  req.mutable_limits()->set_max_wall_ms(200);
  absl::Time start = absl::Now();
  auto r = Run(req);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_TRUE(r.status.ok()) << r.status;  // the run's own budget: a limit
  EXPECT_EQ(r.kinds(), (std::vector<Kind>{v1::AGENT_STEP_KIND_ERROR, v1::AGENT_STEP_KIND_USAGE}));
  EXPECT_EQ(r.steps[0].text(), "wall-clock budget of 200 ms exhausted");
}

TEST_F(AgentLoopTest, ClientDeadlineIsAnError) {
  Reply slow = Answer("too late");
  slow.delay = absl::Seconds(30);
  backend_.Push(slow);
  absl::Time start = absl::Now();
  auto r = Run(Req("x"), absl::Now() + absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status)) << r.status;
  EXPECT_EQ(r.kinds(), (std::vector<Kind>{v1::AGENT_STEP_KIND_ERROR, v1::AGENT_STEP_KIND_USAGE}));
}

TEST_F(AgentLoopTest, ToolErrorBecomesAnObservation) {
  backend_.Push(CallTool("calculator", R"({"expression":"1/0"})"));
  backend_.Push(Answer("cannot divide by zero"));
  auto r = Run(Req("1/0?", {"calculator"}));
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto* result = r.Find(v1::AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  EXPECT_TRUE(result->tool_error());
  EXPECT_EQ(result->text(), "division by zero at position 2");
  EXPECT_EQ(backend_.requests()[1].messages.back().content(),
            "Result of calculator (call_1): error: division by zero at position 2");
  EXPECT_NE(r.Find(v1::AGENT_STEP_KIND_FINAL_ANSWER), nullptr);
}

TEST_F(AgentLoopTest, FailingRemoteToolBecomesAnObservation) {
  auto tool = std::make_shared<FakeTool>("flaky", FakeTool::Mode::kFail);
  ASSERT_TRUE(registry_.Add(tool).ok());
  backend_.Push(CallTool("flaky", R"({"x":"1"})"));
  backend_.Push(Answer("it failed"));
  auto r = Run(Req("go", {"flaky"}, "flaky"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(tool->calls(), (std::vector<std::string>{R"({"x":"1"})"}));
  EXPECT_EQ(tool->call_ids(), (std::vector<std::string>{"call_1"}));
  const auto* result = r.Find(v1::AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  EXPECT_TRUE(result->tool_error());
  EXPECT_EQ(result->text(), "tool exploded");
}

TEST_F(AgentLoopTest, ToolTimeoutBecomesAnObservation) {
  auto tool = std::make_shared<FakeTool>("slow", FakeTool::Mode::kBlock);
  ASSERT_TRUE(registry_.Add(tool).ok());
  backend_.Push(CallTool("slow", "{}"));
  backend_.Push(Answer("gave up"));
  auto req = Req("go", {"slow"});
  req.mutable_limits()->set_tool_timeout_ms(150);
  absl::Time start = absl::Now();
  auto r = Run(req);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto* result = r.Find(v1::AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  EXPECT_TRUE(result->tool_error());
  EXPECT_EQ(result->text(), "timed out after 150 ms");
  EXPECT_NE(r.Find(v1::AGENT_STEP_KIND_FINAL_ANSWER), nullptr);  // the run went on
}

TEST_F(AgentLoopTest, AToolThatOverrunsItsDeadlineCountsAsTimedOut) {
  auto tool = std::make_shared<FakeTool>("stubborn", FakeTool::Mode::kIgnoreDeadline, absl::Milliseconds(300));
  ASSERT_TRUE(registry_.Add(tool).ok());
  backend_.Push(CallTool("stubborn", "{}"));
  backend_.Push(Answer("ok"));
  auto req = Req("go", {"stubborn"});
  req.mutable_limits()->set_tool_timeout_ms(50);
  auto r = Run(req);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto* result = r.Find(v1::AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  EXPECT_TRUE(result->tool_error());
  EXPECT_EQ(result->text(), "timed out after 50 ms");
}

TEST_F(AgentLoopTest, CancelDuringGenerationStopsTheRun) {
  Reply slow = Answer("never");
  slow.delay = absl::Seconds(30);
  backend_.Push(slow);
  std::thread canceller([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel_.Cancel();
  });
  absl::Time start = absl::Now();
  auto r = Run(Req("x"));
  canceller.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(absl::IsCancelled(r.status)) << r.status;
  EXPECT_EQ(r.kinds(), (std::vector<Kind>{v1::AGENT_STEP_KIND_ERROR, v1::AGENT_STEP_KIND_USAGE}));
  EXPECT_EQ(r.steps[0].text(), "cancelled");
}

TEST_F(AgentLoopTest, CancelDuringToolCallStopsTheRun) {
  auto tool = std::make_shared<FakeTool>("slow", FakeTool::Mode::kBlock);
  ASSERT_TRUE(registry_.Add(tool).ok());
  backend_.Push(CallTool("slow", "{}"));
  backend_.Push(Answer("never asked"));
  std::thread canceller([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel_.Cancel();
  });
  absl::Time start = absl::Now();
  auto r = Run(Req("x", {"slow"}));
  canceller.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(absl::IsCancelled(r.status)) << r.status;
  EXPECT_EQ(backend_.requests().size(), 1u);  // no turn after the cancel
  const auto* result = r.Find(v1::AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->text(), "cancelled");
  EXPECT_EQ(r.steps.back().kind(), v1::AGENT_STEP_KIND_USAGE);
}

TEST_F(AgentLoopTest, BackendFailureEndsTheRunWithItsStatus) {
  backend_.Push(Failure(absl::UnavailableError("engine 127.0.0.1:1: connection refused")));
  auto r = Run(Req("x"));
  EXPECT_TRUE(absl::IsUnavailable(r.status)) << r.status;
  ASSERT_NE(r.Find(v1::AGENT_STEP_KIND_ERROR), nullptr);
  EXPECT_EQ(r.Find(v1::AGENT_STEP_KIND_ERROR)->text(), "model call failed: engine 127.0.0.1:1: connection refused");
}

TEST_F(AgentLoopTest, OutputThatIgnoresTheSchemaIsAnInternalError) {
  backend_.Push(Reply{absl::OkStatus(), "Once upon a time", v1::FINISH_REASON_STOP});
  auto r = Run(Req("x"));
  EXPECT_TRUE(absl::IsInternal(r.status)) << r.status;
  EXPECT_EQ(r.steps.back().kind(), v1::AGENT_STEP_KIND_USAGE);
}

TEST_F(AgentLoopTest, SessionContinuesAfterTheStoreIsReopened) {
  backend_.Push(CallTool("calculator", R"({"expression":"6*7"})"));
  backend_.Push(Answer("42"));
  auto first = Run(Req("what is 6*7?", {"calculator"}));
  ASSERT_TRUE(first.status.ok()) << first.status;
  const std::string id = first.steps[0].session_id();

  Reopen();  // as after a restart of the service
  backend_.Push(Answer("you asked about 6*7"));
  auto req = Req("what did I ask?");
  req.set_session_id(id);
  auto second = Run(req);
  ASSERT_TRUE(second.status.ok()) << second.status;
  EXPECT_EQ(second.steps[0].session_id(), id);
  EXPECT_EQ(second.steps[0].step(), 3);  // turns 1 and 2 were the first run's

  // The model saw the whole conversation, the tool result included.
  auto prompt = backend_.requests().back().messages;
  ASSERT_EQ(prompt.size(), 6u);  // system, user, assistant, observation, assistant, user
  EXPECT_EQ(prompt[1].content(), "what is 6*7?");
  EXPECT_EQ(prompt[3].content(), "Result of calculator (call_1): 42");
  EXPECT_EQ(prompt[5].content(), "what did I ask?");

  auto s = store_->GetSession(id, true);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->messages_size(), 6);  // user, assistant, tool, assistant, user, assistant
  EXPECT_EQ(s->steps_size(), static_cast<int>(first.steps.size() + second.steps.size()));
  EXPECT_EQ(s->steps(s->steps_size() - 1).kind(), v1::AGENT_STEP_KIND_USAGE);
  EXPECT_EQ(s->model(), "tiny");
}

TEST_F(AgentLoopTest, OneRunPerSessionAtATime) {
  backend_.Push(Answer("first"));
  auto first = Run(Req("x"));
  ASSERT_TRUE(first.status.ok());
  const std::string id = first.steps[0].session_id();

  Reply slow = Answer("slow");
  slow.delay = absl::Seconds(30);
  backend_.Push(slow);
  auto req = Req("again");
  req.set_session_id(id);
  Result busy_run;
  std::thread t([&] { busy_run = Run(req); });
  while (backend_.requests().size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto second = Run(req);
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status)) << second.status;
  EXPECT_TRUE(second.steps.empty());
  cancel_.Cancel();
  t.join();
  EXPECT_TRUE(absl::IsCancelled(busy_run.status));
}

TEST_F(AgentLoopTest, RagSearchQueriesTheRunsCollection) {
  backend_.Push(CallTool("rag_search", R"({"query":"dragons","top_k":2})"));
  backend_.Push(Answer("dragons fly"));
  auto req = Req("tell me about dragons", {"rag_search"}, "rag_search");
  req.set_rag_collection("lore");
  auto r = Run(req);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(retriever_.last.collection(), "lore");
  EXPECT_EQ(retriever_.last.query(), "dragons");
  EXPECT_EQ(retriever_.last.top_k(), 2);
  const auto* result = r.Find(v1::AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  auto hits = nlohmann::json::parse(result->text());
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0]["text"], "a passage about dragons");
}

TEST_F(AgentLoopTest, InvalidRequestsAreRefusedBeforeAnyStep) {
  auto bad = [this](v1::AgentRunRequest req, const std::string& why, absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
    auto r = Run(req);
    EXPECT_EQ(r.status.code(), code) << why << ": " << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(), why)) << r.status;
    EXPECT_TRUE(r.steps.empty());
  };
  bad(Req(""), "input is empty");
  bad(Req("x", {"shell"}), "unknown tool 'shell'");
  bad(Req("x", {"calculator", "calculator"}), "listed twice");
  bad(Req("x", {"calculator"}, "bogus"), "tool_choice 'bogus'");
  bad(Req("x", {"calculator"}, "current_time"), "tool_choice 'current_time'");
  bad(Req("x", {}, "required"), "needs at least one tool");
  bad(Req("x", {"rag_search"}), "rag_search needs rag_collection");
  auto neg = Req("x");
  neg.mutable_limits()->set_max_steps(-1);
  bad(neg, "limits.max_steps must not be negative");
  auto huge = Req("x");
  huge.mutable_limits()->set_max_tokens(1 << 30);
  bad(huge, "limits.max_tokens is above the cap");
  auto wall = Req("x");
  wall.mutable_limits()->set_max_wall_ms(-5);
  bad(wall, "limits.max_wall_ms");
  auto schema = Req("x");
  schema.mutable_sampling()->set_json_schema("{}");
  bad(schema, "sampling.grammar and sampling.json_schema must be empty");
  bad(Req(std::string(options_.max_input_bytes + 1, 'a')), "input is longer");
  auto unknown = Req("x");
  unknown.set_session_id("s-0000");
  bad(unknown, "no session 's-0000'", absl::StatusCode::kNotFound);
  EXPECT_TRUE(backend_.requests().empty());
}

TEST_F(AgentLoopTest, NoDefaultModelAndNoneNamedIsRefused) {
  options_.default_model = "";
  Reopen();
  auto r = Run(Req("x"));
  EXPECT_TRUE(absl::IsInvalidArgument(r.status));
  EXPECT_TRUE(absl::StrContains(r.status.message(), "model is empty"));
}

}  // namespace
}  // namespace llmesh::agent
