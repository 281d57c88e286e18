// OpenAI constrained-output fields (response_format, json_schema, tools,
// tool_choice), assistant tool_calls in the history, and tool_calls /
// cited_chunk_ids in responses and stream chunks.
#include <gtest/gtest.h>

#include "llmesh/gateway/openai_json.h"
#include "llmesh/gateway/openai_tools.h"

namespace llmesh::gateway {
namespace {

using json = nlohmann::json;

absl::StatusOr<OpenAiRequest> Chat(const std::string& extra, std::string* param) {
  std::string body = R"({"model":"m","messages":[{"role":"user","content":"hi"}])" + extra + "}";
  return ParseChatCompletionRequest(body, "dflt", param);
}

TEST(OpenAiToolsTest, ResponseFormatJsonObjectAndJsonSchema) {
  std::string param;
  auto obj = Chat(R"(,"response_format":{"type":"json_object"})", &param);
  ASSERT_TRUE(obj.ok()) << obj.status();
  EXPECT_EQ(obj->job.sampling.json_schema(), R"({"type":"object"})");

  auto schema = Chat(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,
      "schema":{"type":"object","properties":{"zname":{"type":"string"},"age":{"type":"integer"}},"required":["zname","age"]}}})",
                     &param);
  ASSERT_TRUE(schema.ok()) << schema.status();
  // Declared order kept ("zname" before "age"), which the output will follow.
  EXPECT_EQ(schema->job.sampling.json_schema(),
            R"({"type":"object","properties":{"zname":{"type":"string"},"age":{"type":"integer"}},"required":["zname","age"]})");

  auto text = Chat(R"(,"response_format":{"type":"text"})", &param);
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(text->job.sampling.json_schema().empty());
}

TEST(OpenAiToolsTest, BadResponseFormatsAre400sNamingIt) {
  for (const char* extra : {
           R"(,"response_format":"json")",
           R"(,"response_format":{"type":"xml"})",
           R"(,"response_format":{"type":"json_schema"})",
           R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{}}})",
           R"(,"response_format":{"type":"json_schema","json_schema":{"name":"bad name","schema":{}}})",
           R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","format":"date"}}})",
           R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","required":["a"]}}})",
           R"(,"response_format":{"type":"json_object"},"grammar":"root ::= \"a\"")",
       }) {
    std::string param;
    auto r = Chat(extra, &param);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << extra;
    EXPECT_EQ(param, "response_format") << extra;
    EXPECT_FALSE(r.status().message().empty());
  }
  std::string param;
  auto r = Chat(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","format":"date"}}})",
                &param);
  EXPECT_NE(r.status().message().find("format"), std::string::npos) << r.status();  // the compiler's reason
}

TEST(OpenAiToolsTest, JsonSchemaFieldWorksOnCompletionsToo) {
  std::string param;
  auto c = ParseCompletionRequest(R"({"prompt":"x","json_schema":{"type":"array","items":{"type":"integer"}}})", "m",
                                  &param);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->job.sampling.json_schema(), R"({"type":"array","items":{"type":"integer"}})");
  auto bad = ParseCompletionRequest(R"({"prompt":"x","json_schema":{"type":"frob"}})", "m", &param);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(param, "json_schema");
  auto both = ParseCompletionRequest(R"({"prompt":"x","grammar":"root ::= \"a\"","json_schema":{}})", "m", &param);
  EXPECT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpenAiToolsTest, ToolsAndToolChoiceBecomeAConstrainedJob) {
  std::string param;
  auto r = Chat(R"(,"tools":[{"type":"function","function":{"name":"get_weather","description":"Forecast",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
      {"type":"function","function":{"name":"now"}}],
      "tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false)",
                &param);
  ASSERT_TRUE(r.ok()) << r.status();
  const GenerateJob& j = r->job;
  ASSERT_EQ(j.tools.size(), 2u);
  EXPECT_EQ(j.tools[0].description(), "Forecast");
  EXPECT_EQ(j.tools[1].parameters_json_schema(), "");
  EXPECT_EQ(j.tool_choice, "get_weather");
  EXPECT_TRUE(j.tools_applied);
  EXPECT_EQ(j.tool_mode, ToolMode::kRequired);
  EXPECT_FALSE(j.sampling.grammar().empty());
  EXPECT_EQ(j.messages[0].role(), "system");

  auto none = Chat(R"(,"tools":[{"type":"function","function":{"name":"now"}}],"tool_choice":"none")", &param);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->job.tool_mode, ToolMode::kNone);
  auto a = Chat(R"(,"tools":[{"type":"function","function":{"name":"now"}}])", &param);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->job.tool_mode, ToolMode::kAuto);
}

TEST(OpenAiToolsTest, BadToolsAre400sNamingTheField) {
  struct Case {
    const char* extra;
    const char* param;
  };
  for (const Case& c : std::vector<Case>{
           {R"(,"tools":{})", "tools"},
           {R"(,"tools":[{"type":"retrieval"}])", "tools"},
           {R"(,"tools":[{"type":"function","function":{"description":"x"}}])", "tools"},
           {R"(,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}])", "tools"},
           {R"(,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","patternProperties":{}}}}])",
            "tools"},
           {R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"always")", "tool_choice"},
           {R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}})",
            "tool_choice"},
           {R"(,"tool_choice":"required")", "tool_choice"},
           {R"(,"tools":[{"type":"function","function":{"name":"f"}}],"grammar":"root ::= \"a\"")", "tools"},
           {R"(,"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":"yes")", "parallel_tool_calls"},
       }) {
    std::string param;
    auto r = Chat(c.extra, &param);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.extra;
    EXPECT_EQ(param, c.param) << c.extra << ": " << r.status();
  }
}

TEST(OpenAiToolsTest, AssistantToolCallsStayInTheHistoryAsTheCallText) {
  std::string param;
  auto r = ParseChatCompletionRequest(R"({"messages":[
      {"role":"user","content":"weather?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"sunny"}]})",
                                      "m", &param);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->job.messages.size(), 3u);
  EXPECT_EQ(r->job.messages[1].content(), R"({"name":"get_weather","arguments":{"city":"Paris"}})");
  EXPECT_EQ(r->job.messages[2].role(), "tool");
  EXPECT_EQ(r->job.messages[2].tool_call_id(), "call_1");
  auto bad = ParseChatCompletionRequest(
      R"({"messages":[{"role":"assistant","tool_calls":[{"type":"function"}]},{"role":"user","content":"x"}]})", "m",
      &param);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(param, "messages");
}

v1::GatewayGenerateResponse CallMessage() {
  v1::GatewayGenerateResponse r;
  r.set_index(0);
  r.set_finish_reason(v1::FINISH_REASON_TOOL_CALLS);
  auto* c = r.add_tool_calls();
  c->set_id("call_abc_0");
  c->set_name("get_weather");
  c->set_arguments_json(R"({"city":"Paris"})");
  r.mutable_usage()->set_prompt_tokens(10);
  r.mutable_usage()->set_completion_tokens(9);
  return r;
}

TEST(OpenAiToolsTest, ResponsesCarryToolCallsTheOpenAiWay) {
  OpenAiResponseBuilder whole(true, "chatcmpl-1", "m", 1, 1, false, 0);
  whole.Add(CallMessage());
  json j = json::parse(whole.Complete());
  const json& choice = j["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_TRUE(choice["message"]["content"].is_null());
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(choice["message"]["tool_calls"][0]["id"], "call_abc_0");
  EXPECT_EQ(choice["message"]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_FALSE(j.contains("cited_chunk_ids"));

  OpenAiResponseBuilder streamed(true, "chatcmpl-1", "m", 1, 1, false, 0);
  auto chunks = streamed.Chunks(CallMessage());
  ASSERT_EQ(chunks.size(), 2u);
  json first = json::parse(chunks[0]);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
  EXPECT_EQ(first["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  json last = json::parse(chunks[1]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_FALSE(last["choices"][0]["delta"].contains("content"));
}

TEST(OpenAiToolsTest, RagResponsesCarryTheCitedChunks) {
  v1::GatewayGenerateResponse text;
  text.set_index(0);
  text.set_text_delta("Paris");
  v1::GatewayGenerateResponse end;
  end.set_index(0);
  end.set_finish_reason(v1::FINISH_REASON_STOP);
  end.add_cited_chunk_ids("doc1#0");
  end.add_cited_chunk_ids("doc2#3");

  OpenAiResponseBuilder whole(true, "id", "m", 1, 1, false, 0);
  whole.IncludeCitations();
  whole.Add(text);
  whole.Add(end);
  json j = json::parse(whole.Complete());
  EXPECT_EQ(j["cited_chunk_ids"], json({"doc1#0", "doc2#3"}));
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Paris");

  OpenAiResponseBuilder streamed(true, "id", "m", 1, 1, false, 0);
  streamed.IncludeCitations();
  json c1 = json::parse(streamed.Chunks(text).at(0));
  EXPECT_FALSE(c1.contains("cited_chunk_ids"));
  json c2 = json::parse(streamed.Chunks(end).at(0));
  EXPECT_EQ(c2["cited_chunk_ids"], json({"doc1#0", "doc2#3"}));

  // Nothing retrieved: still there, empty.
  OpenAiResponseBuilder empty(true, "id", "m", 1, 1, false, 0);
  empty.IncludeCitations();
  v1::GatewayGenerateResponse bare = end;
  bare.clear_cited_chunk_ids();
  empty.Add(bare);
  EXPECT_EQ(json::parse(empty.Complete())["cited_chunk_ids"], json::array());
}

}  // namespace
}  // namespace llmesh::gateway
