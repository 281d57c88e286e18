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
    // The gateway needs the agent's address and the agent the engine's, so
    // the agent and a standalone engine start first; the gateway routes to
    // that engine as a static worker.
    auto tok = StartService(Bin("llmesh-tokenizer"), {"--model-dir", ModelDir(), "--log-level", "warn"});
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = new Service(std::move(*tok));
    auto eng = StartService(Bin("llmesh-engine"), {"--model-dir", ModelDir(), "--model", "stories260K", "--threads",
                                                   "1", "--kv-budget-mb", "16", "--log-level", "warn"});
    ASSERT_TRUE(eng.ok()) << eng.status();
    engine_ = new Service(std::move(*eng));
    ASSERT_TRUE(WaitForServing(engine_->address(), absl::Seconds(30)).ok());
    auto agent = StartService(Bin("llmesh-agent"),
                              {"--data-dir", MakeTempDir("gw-agent"), "--engine", engine_->address(), "--tokenizer",
                               tokenizer_->address(), "--rag", "", "--model", "stories260K", "--log-level", "info"});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = new Service(std::move(*agent));
    ASSERT_TRUE(WaitForServing(agent_->address(), absl::Seconds(30)).ok());
    std::string dir = MakeTempDir("gw");
    auto gw = StartService(Bin("llmesh-gateway"),
                           {"--tokenizer", tokenizer_->address(), "--workers", engine_->address(), "--agent",
                            agent_->address(), "--http-listen", "127.0.0.1:0", "--http-port-file", dir + "/http.port",
                            "--model", "stories260K", "--log-level", "debug"});
    ASSERT_TRUE(gw.ok()) << gw.status();
    gateway_ = new Service(std::move(*gw));
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline && http_port_ <= 0) {
      std::ifstream f(dir + "/http.port");
      if (!(f >> http_port_)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(http_port_, 0);
    ASSERT_TRUE(WaitForServing(gateway_->address(), absl::Seconds(20)).ok());
    stub_ = Gateway::NewStub(rpc::CreateChannel(gateway_->address())).release();
  }
  static void TearDownTestSuite() {
    delete stub_;
    delete gateway_;
    delete agent_;
    delete engine_;
    delete tokenizer_;
  }

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

  static inline Service* tokenizer_ = nullptr;
  static inline Service* engine_ = nullptr;
  static inline Service* agent_ = nullptr;
  static inline Service* gateway_ = nullptr;
  static inline Gateway::Stub* stub_ = nullptr;
  static inline int http_port_ = 0;
};

TEST_F(GatewayAgentTest, GrpcAgentRunStreamsAForcedToolCallAndItsResult) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto reader = stub_->AgentRun(&ctx, CalculatorRun());
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
  httplib::Client cli("127.0.0.1", http_port_);
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
  size_t pos = 0;
  while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
    size_t end = r->body.find("\n\n", pos);
    std::string payload = r->body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (payload == "[DONE]") {
      done = true;
      break;
    }
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
