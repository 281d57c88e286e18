// POST /v1/agents/run bodies and the step / run objects it answers with.
#include "llmesh/gateway/agent_json.h"

#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace llmesh::gateway {
namespace {

using json = nlohmann::json;

TEST(AgentJsonTest, RunRequestMapsEveryField) {
  std::string param;
  auto r = ParseAgentRunRequest(R"({"model":"m","input":"2+2?","system_prompt":"Be exact.","tools":["calculator"],
      "tool_choice":"required","session_id":"s1","rag_collection":"docs","limits":{"max_steps":3,"max_tokens":200,"max_wall_ms":5000,
      "tool_timeout_ms":100},"temperature":0.5,"seed":7,"stream":true})",
                                &param);
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::AgentRunRequest& run = r->run;
  EXPECT_TRUE(r->stream);
  EXPECT_EQ(run.model(), "m");
  EXPECT_EQ(run.input(), "2+2?");
  EXPECT_EQ(run.system_prompt(), "Be exact.");
  ASSERT_EQ(run.tools_size(), 1);
  EXPECT_EQ(run.tools(0), "calculator");
  EXPECT_EQ(run.tool_choice(), "required");
  EXPECT_EQ(run.session_id(), "s1");
  EXPECT_EQ(run.rag_collection(), "docs");
  EXPECT_EQ(run.limits().max_steps(), 3);
  EXPECT_EQ(run.limits().max_tokens(), 200);
  EXPECT_EQ(run.limits().max_wall_ms(), 5000);
  EXPECT_EQ(run.limits().tool_timeout_ms(), 100);
  EXPECT_FLOAT_EQ(run.sampling().temperature(), 0.5f);
  EXPECT_EQ(run.sampling().seed(), 7u);
  auto d = ParseAgentRunRequest(R"({"input":"x"})", &param);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->run.model(), "");  // agent-svc picks: the session's model, else its default
  EXPECT_FALSE(d->stream);
  EXPECT_FALSE(d->run.has_limits());
}

TEST(AgentJsonTest, BadRunsAre400sNamingTheField) {
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& c : std::vector<Case>{
           {R"({})", "input"},
           {R"({"input":""})", "input"},
           {R"({"input":3})", "input"},
           {R"({"input":"x","tools":"calculator"})", "tools"},
           {R"({"input":"x","tools":["bad name"]})", "tools"},
           {R"({"input":"x","limits":{"max_steps":-1}})", "limits"},
           {R"({"input":"x","limits":{"max_steps":1.5}})", "limits"},
           {R"({"input":"x","limits":[]})", "limits"},
           {R"({"input":"x","temperature":"hot"})", "temperature"},
           {R"({"input":"x","stream":1})", "stream"},
           {R"({"input":"x","session_id":5})", "session_id"},
           {R"({"input":"x","model":["m"]})", "model"},
           {R"({"input":"x","rag_collection":1})", "rag_collection"},
       }) {
    std::string param;
    auto r = ParseAgentRunRequest(c.body, &param);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(param, c.param) << c.body;
  }
}

TEST(AgentJsonTest, StepsAndRunsAsJson) {
  v1::AgentStep call;
  call.set_kind(v1::AGENT_STEP_KIND_TOOL_CALL);
  call.set_session_id("s1");
  call.set_step(1);
  call.set_tool_name("calculator");
  call.set_tool_call_id("c1");
  call.set_arguments_json(R"({"expression":"2+2"})");
  json c = json::parse(AgentStepJson(call));
  EXPECT_EQ(c["object"], "agent.step");
  EXPECT_EQ(c["kind"], "tool_call");
  EXPECT_EQ(c["session_id"], "s1");
  EXPECT_EQ(c["step"], 1);
  EXPECT_EQ(c["tool_name"], "calculator");
  EXPECT_EQ(c["arguments"], R"({"expression":"2+2"})");
  EXPECT_FALSE(c.contains("usage"));

  v1::AgentStep result = call;
  result.set_kind(v1::AGENT_STEP_KIND_TOOL_RESULT);
  result.set_text("4");
  v1::AgentStep answer;
  answer.set_kind(v1::AGENT_STEP_KIND_FINAL_ANSWER);
  answer.set_session_id("s1");
  answer.set_step(2);
  answer.set_text("It is 4.");
  v1::AgentStep usage;
  usage.set_kind(v1::AGENT_STEP_KIND_USAGE);
  usage.set_session_id("s1");
  usage.mutable_usage()->set_prompt_tokens(30);
  usage.mutable_usage()->set_completion_tokens(12);
  usage.mutable_usage()->set_total_tokens(42);
  json run = json::parse(AgentRunJson({call, result, answer, usage}));
  EXPECT_EQ(run["object"], "agent.run");
  EXPECT_EQ(run["session_id"], "s1");
  EXPECT_EQ(run["output"], "It is 4.");
  EXPECT_EQ(run["usage"]["total_tokens"], 42);
  ASSERT_EQ(run["steps"].size(), 4u);
  EXPECT_EQ(run["steps"][1]["kind"], "tool_result");
  EXPECT_EQ(run["steps"][1]["tool_error"], false);
  EXPECT_EQ(run["steps"][1]["text"], "4");
  EXPECT_EQ(std::string(AgentStepKindName(v1::AGENT_STEP_KIND_ERROR)), "error");
}

}  // namespace
}  // namespace llmesh::gateway
