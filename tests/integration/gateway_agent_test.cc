// AgentRun through the gateway over real processes on 127.0.0.1 with
// stories260K: tokenizer, one engine registered with the gateway, llmesh-agent
// (generating through that engine), and the gateway with --agent. A run that
// forces the calculator streams its steps over gRPC and as SSE over HTTP; the
// model is tiny, so what is checked is the shape of the run: a call with JSON
// arguments, its result, the same session throughout, usage (or the limit's
// error) last.
#include <set>

#include <gtest/gtest.h>

#include "gateway_stack.h"
#include "llmesh/v1/agent.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace llmesh::testing {
namespace {

using json = nlohmann::json;
using namespace llmesh::v1;

class GatewayAgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The agent generates through the stack's engine, with no rag-svc.
    stack_ = new BackendStack();
    absl::Status started = stack_->Start(
        "llmesh-agent",
        {"--data-dir", MakeTempDir("gw-agent"), "--rag", "", "--model", "stories260K", "--log-level", "info"},
        absl::Seconds(30), "--agent");
    ASSERT_TRUE(started.ok()) << started;
  }
  static void TearDownTestSuite() { delete stack_; }

  static AgentRunRequest CalculatorRun() {
    AgentRunRequest req;
    req.set_input("What is 2 + 3?");
    req.set_system_prompt("Use the calculator.");
    req.add_tools("calculator");
    req.set_tool_choice("calculator");
    req.mutable_limits()->set_max_steps(2);
    req.mutable_limits()->set_max_tokens(400);
    req.mutable_sampling()->set_temperature(0.8f);
    req.mutable_sampling()->set_seed(3);
    return req;
  }

  static inline BackendStack* stack_ = nullptr;
};

TEST_F(GatewayAgentTest, GrpcAgentRunStreamsAForcedToolCallAndItsResult) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto reader = stack_->stub->AgentRun(&ctx, CalculatorRun());
  std::vector<AgentStep> steps;
  AgentStep s;
  while (reader->Read(&s)) steps.push_back(s);
  grpc::Status st = reader->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(steps.size(), 3u);
  std::set<std::string> sessions;
  for (const auto& step : steps) sessions.insert(step.session_id());
  EXPECT_EQ(sessions.size(), 1u);
  EXPECT_FALSE(sessions.begin()->empty());
  auto call = std::find_if(steps.begin(), steps.end(),
                           [](const AgentStep& x) { return x.kind() == AGENT_STEP_KIND_TOOL_CALL; });
  ASSERT_NE(call, steps.end());
  EXPECT_EQ(call->tool_name(), "calculator");
  json args = json::parse(call->arguments_json(), nullptr, false);
  EXPECT_TRUE(args.is_object()) << call->arguments_json();
  auto result = std::find_if(call, steps.end(), [&](const AgentStep& x) {
    return x.kind() == AGENT_STEP_KIND_TOOL_RESULT && x.tool_call_id() == call->tool_call_id();
  });
  EXPECT_NE(result, steps.end());  // run, whatever the model wrote (an error is an observation)
  AgentStepKind last = steps.back().kind();
  EXPECT_TRUE(last == AGENT_STEP_KIND_USAGE || last == AGENT_STEP_KIND_ERROR) << steps.back().DebugString();
}

TEST_F(GatewayAgentTest, HttpAgentRunStreamsStepsAsSse) {
  httplib::Client cli("127.0.0.1", stack_->http_port);
  cli.set_read_timeout(120, 0);
  json body = {{"input", "What is 2 + 3?"},
               {"tools", {"calculator"}},
               {"tool_choice", "calculator"},
               {"limits", {{"max_steps", 2}, {"max_tokens", 400}}},
               {"temperature", 0.8},
               {"seed", 4},
               {"stream", true}};
  auto r = cli.Post("/v1/agents/run", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::vector<std::string> kinds;
  bool done = false;
  for (const std::string& payload : SseData(r->body, &done)) {
    json e = json::parse(payload);
    ASSERT_EQ(e["object"], "agent.step") << payload;
    kinds.push_back(e["kind"]);
  }
  EXPECT_TRUE(done);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "tool_call"), kinds.end()) << r->body;
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "tool_result"), kinds.end()) << r->body;

  auto bad = cli.Post("/v1/agents/run", R"({"input":"x","tools":["no such tool"]})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

}  // namespace
}  // namespace llmesh::testing
