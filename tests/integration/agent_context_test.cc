// Agents on the default model with the default limits (issue #14), over real
// processes on 127.0.0.1: a tokenizer and one stories260K engine (a
// 512-token context) registered with gateway A; llmesh-agent generating
// through gateway A (as `llmesh up` wires it) and another generating on the
// engine directly; gateway B fronting the first for AgentRun and
// /v1/agents/run. The default max_tokens (1024) is twice the context and
// the model writes long strings, so every run meets the context: each must
// still end the same way, with a final answer or a final ERROR step after
// the steps it streamed, an OK status (HTTP 200), and no internal address
// in what the client reads.
#include <iostream>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "gateway_stack.h"
#include "llmesh/v1/agent.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace llmesh::testing {
namespace {

using json = nlohmann::json;
using namespace llmesh::v1;

constexpr int kRuns = 4;

class AgentContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new GatewayStack();
    ASSERT_TRUE(stack_->Start({}).ok());
    auto engine = stack_->AddEngine();
    ASSERT_TRUE(engine.ok());
    ASSERT_TRUE(stack_->WaitForWorkers(1).ok());
    const std::string engine_address = (*engine)->address();
    const std::string tokenizer = stack_->tokenizer.address();

    auto via_gateway = StartService(Bin("llmesh-agent"), {"--data-dir", MakeTempDir("agent-gw"), "--rag", "",
                                                          "--model", "stories260K", "--gateway",
                                                          stack_->gateway.address(), "--log-level", "info"});
    ASSERT_TRUE(via_gateway.ok()) << via_gateway.status();
    agent_gateway_ = new Service(std::move(*via_gateway));
    auto direct = StartService(Bin("llmesh-agent"),
                               {"--data-dir", MakeTempDir("agent-engine"), "--rag", "", "--model", "stories260K",
                                "--engine", engine_address, "--tokenizer", tokenizer, "--log-level", "info"});
    ASSERT_TRUE(direct.ok()) << direct.status();
    agent_engine_ = new Service(std::move(*direct));
    ASSERT_TRUE(WaitForServing(agent_gateway_->address(), absl::Seconds(20)).ok());
    ASSERT_TRUE(WaitForServing(agent_engine_->address(), absl::Seconds(20)).ok());

    auto front = StartGatewayProcess({"--tokenizer", tokenizer, "--workers", engine_address, "--agent",
                                      agent_gateway_->address(), "--model", "stories260K", "--log-level", "info"},
                                     &front_http_port_);
    ASSERT_TRUE(front.ok()) << front.status();
    front_ = new Service(std::move(*front));
    ASSERT_TRUE(WaitForServing(front_->address(), absl::Seconds(20)).ok());
  }
  static void TearDownTestSuite() {
    delete front_;
    delete agent_engine_;
    delete agent_gateway_;
    delete stack_;
  }

  // A run with the default limits, as a new user sends it.
  static AgentRunRequest Task(int seed) {
    AgentRunRequest req;
    req.set_input("What is 12 * 7? Use the calculator, then answer.");
    req.add_tools("calculator");
    req.mutable_sampling()->set_temperature(0.8f);
    req.mutable_sampling()->set_seed(seed);
    return req;
  }

  // Streams a run; checks how it ended and says how (for the log).
  template <typename Stub>
  static std::string ExpectAnEnd(Stub& stub, const AgentRunRequest& req, const std::string& who) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto reader = stub.AgentRunOrRun(&ctx, req);
    std::vector<AgentStep> steps;
    AgentStep s;
    while (reader->Read(&s)) steps.push_back(s);
    grpc::Status st = reader->Finish();
    std::string all;
    for (const auto& x : steps) absl::StrAppend(&all, x.ShortDebugString(), "\n");
    EXPECT_TRUE(st.ok()) << who << ": " << st.error_message() << "\n" << all;
    if (steps.size() < 2) {
      ADD_FAILURE() << who << "\n" << all;
      return "no end";
    }
    EXPECT_EQ(steps.back().kind(), AGENT_STEP_KIND_USAGE) << who << "\n" << all;
    const AgentStep& end = steps[steps.size() - 2];
    EXPECT_TRUE(end.kind() == AGENT_STEP_KIND_FINAL_ANSWER || end.kind() == AGENT_STEP_KIND_ERROR)
        << who << "\n" << all;
    EXPECT_EQ(all.find("127.0.0.1"), std::string::npos) << who << "\n" << all;
    EXPECT_EQ(all.find("exceeds"), std::string::npos) << who << "\n" << all;
    return absl::StrCat(who, ": ", steps.size() - 2, " steps, then ",
                        end.kind() == AGENT_STEP_KIND_FINAL_ANSWER ? "an answer" : "error: " + end.text());
  }

  static inline GatewayStack* stack_ = nullptr;
  static inline Service* agent_gateway_ = nullptr;
  static inline Service* agent_engine_ = nullptr;
  static inline Service* front_ = nullptr;
  static inline int front_http_port_ = 0;
};

// AgentService::Run and Gateway::AgentRun under one name.
struct AgentStub {
  std::unique_ptr<AgentService::Stub> stub;
  auto AgentRunOrRun(grpc::ClientContext* ctx, const AgentRunRequest& req) { return stub->Run(ctx, req); }
};
struct GatewayStub {
  std::unique_ptr<Gateway::Stub> stub;
  auto AgentRunOrRun(grpc::ClientContext* ctx, const AgentRunRequest& req) { return stub->AgentRun(ctx, req); }
};

TEST_F(AgentContextTest, RunsWithDefaultLimitsEndWithAnAnswerOrAnErrorStepEveryTime) {
  AgentStub via_gateway{AgentService::NewStub(rpc::CreateChannel(agent_gateway_->address()))};
  AgentStub direct{AgentService::NewStub(rpc::CreateChannel(agent_engine_->address()))};
  GatewayStub front{Gateway::NewStub(rpc::CreateChannel(front_->address()))};
  for (int seed = 1; seed <= kRuns; ++seed) {
    const std::string runs[] = {ExpectAnEnd(via_gateway, Task(seed), "agent via gateway"),
                                ExpectAnEnd(direct, Task(seed), "agent on the engine"),
                                ExpectAnEnd(front, Task(seed), "gateway AgentRun")};
    for (const auto& end : runs) std::cout << "seed " << seed << ": " << end << std::endl;
  }
}

TEST_F(AgentContextTest, HttpRunsWithDefaultLimitsAre200sEndingWithAnAnswerOrAnErrorStep) {
  httplib::Client cli("127.0.0.1", front_http_port_);
  cli.set_read_timeout(120, 0);
  for (int seed = 1; seed <= kRuns; ++seed) {
    for (bool stream : {false, true}) {
      json body = {{"input", "What is 12 * 7? Use the calculator, then answer."},
                   {"tools", {"calculator"}},
                   {"temperature", 0.8},
                   {"seed", seed},
                   {"stream", stream}};
      auto r = cli.Post("/v1/agents/run", body.dump(), "application/json");
      ASSERT_TRUE(r);
      const std::string who = absl::StrCat(stream ? "SSE" : "JSON", ", seed ", seed, ": ", r->body);
      ASSERT_EQ(r->status, 200) << who;
      EXPECT_EQ(r->body.find("127.0.0.1"), std::string::npos) << who;
      std::vector<json> steps;
      if (stream) {
        bool done = false;
        for (const auto& payload : SseData(r->body, &done)) steps.push_back(json::parse(payload));
        EXPECT_TRUE(done) << who;
      } else {
        json whole = json::parse(r->body);
        for (const auto& s : whole["steps"]) steps.push_back(s);
      }
      ASSERT_GE(steps.size(), 2u) << who;
      EXPECT_EQ(steps.back()["kind"], "usage") << who;
      const json& end = steps[steps.size() - 2];
      EXPECT_TRUE(end["kind"] == "final_answer" || end["kind"] == "error") << who;
    }
  }
}

}  // namespace
}  // namespace llmesh::testing
