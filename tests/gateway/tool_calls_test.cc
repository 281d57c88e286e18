// Tool calls: the combined call schema, the grammar ApplyTools sets (checked
// by matching texts against it with the engine's own matcher), parsing a
// call back, and the per-completion filter that holds a call's text.
#include "llmesh/gateway/tool_calls.h"

#include <gtest/gtest.h>

#include "llmesh/engine/grammar.h"
#include "nlohmann/json.hpp"

namespace llmesh::gateway {
namespace {

using json = nlohmann::ordered_json;

v1::ToolSpec Tool(const std::string& name, const std::string& schema, const std::string& description = "") {
  v1::ToolSpec t;
  t.set_name(name);
  t.set_parameters_json_schema(schema);
  t.set_description(description);
  return t;
}

const char kWeather[] =
    R"({"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1,"maximum":7}},)"
    R"("required":["city"],"additionalProperties":false})";

GenerateJob ChatJob(std::vector<v1::ToolSpec> tools, const std::string& choice) {
  GenerateJob job;
  job.input = GenerateJob::Input::kChat;
  v1::ChatMessage m;
  m.set_role("user");
  m.set_content("weather in Paris?");
  job.messages.push_back(m);
  job.tools = std::move(tools);
  job.tool_choice = choice;
  return job;
}

bool Matches(const std::string& grammar, const std::string& text) {
  auto g = engine::Grammar::Parse(grammar);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() && engine::GrammarMatches(*g, text);
}

TEST(ToolCallsTest, ToolNamesFollowOpenAisRule) {
  EXPECT_TRUE(IsValidToolName("get_weather-2"));
  EXPECT_TRUE(IsValidToolName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidToolName(""));
  EXPECT_FALSE(IsValidToolName(std::string(65, 'a')));
  EXPECT_FALSE(IsValidToolName("get weather"));
  EXPECT_FALSE(IsValidToolName("a.b"));
}

TEST(ToolCallsTest, OneToolIsOneObjectSchemaManyAreAnyOf) {
  auto one = ToolCallSchema({Tool("get_weather", kWeather)});
  ASSERT_TRUE(one.ok()) << one.status();
  json s = json::parse(*one);
  EXPECT_EQ(s["properties"]["name"]["const"], "get_weather");
  EXPECT_EQ(s["properties"]["arguments"], json::parse(kWeather));
  EXPECT_EQ(s["required"], json({"name", "arguments"}));
  EXPECT_EQ(s["additionalProperties"], false);

  auto two = ToolCallSchema({Tool("a", ""), Tool("b", kWeather)});
  ASSERT_TRUE(two.ok()) << two.status();
  json t = json::parse(*two);
  ASSERT_EQ(t["anyOf"].size(), 2u);
  EXPECT_EQ(t["anyOf"][0]["properties"]["name"]["const"], "a");
  // No parameters: the empty object.
  EXPECT_EQ(t["anyOf"][0]["properties"]["arguments"]["additionalProperties"], false);
  EXPECT_EQ(t["anyOf"][1]["properties"]["name"]["const"], "b");
}

TEST(ToolCallsTest, EachToolsDefsMoveToTheRootAndItsRefsFollow) {
  const char kWithDefs[] =
      R"({"type":"object","properties":{"at":{"$ref":"#/$defs/place"},"via":{"$ref":"#/definitions/place"}},)"
      R"("required":["at"],"$defs":{"place":{"type":"string"}},"definitions":{"place":{"type":"string"}}})";
  auto schema = ToolCallSchema({Tool("go", kWithDefs), Tool("stay", kWithDefs)});
  ASSERT_TRUE(schema.ok()) << schema.status();
  json s = json::parse(*schema);
  EXPECT_EQ(s["$defs"]["t0_place"]["type"], "string");
  EXPECT_EQ(s["$defs"]["t1_place"]["type"], "string");
  EXPECT_EQ(s["anyOf"][0]["properties"]["arguments"]["properties"]["at"]["$ref"], "#/$defs/t0_place");
  EXPECT_EQ(s["anyOf"][0]["properties"]["arguments"]["properties"]["via"]["$ref"], "#/$defs/t0_place");
  EXPECT_EQ(s["anyOf"][1]["properties"]["arguments"]["properties"]["at"]["$ref"], "#/$defs/t1_place");
  EXPECT_FALSE(s["anyOf"][0]["properties"]["arguments"].contains("$defs"));
  // And it compiles: the refs resolve.
  auto g = engine::JsonSchemaToGrammar(*schema);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(Matches(*g, R"({"name":"go","arguments":{"at":"x"}})"));
}

TEST(ToolCallsTest, ParametersThatAreNotAnObjectAreRefused) {
  auto s = ToolCallSchema({Tool("f", "[1,2]")});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("'f'"), std::string::npos);
  EXPECT_FALSE(ToolCallSchema({Tool("f", "{not json")}).ok());
}

TEST(ToolCallsTest, RequiredConstrainsTheAnswerToACall) {
  GenerateJob job = ChatJob({Tool("get_weather", kWeather, "Weather forecast")}, "required");
  ASSERT_TRUE(ApplyTools(&job).ok());
  EXPECT_EQ(job.tool_mode, ToolMode::kRequired);
  EXPECT_EQ(job.tool_names, std::vector<std::string>{"get_weather"});
  const std::string& g = job.sampling.grammar();
  EXPECT_TRUE(Matches(g, R"({"name":"get_weather","arguments":{"city":"Paris"}})"));
  EXPECT_TRUE(Matches(g, R"({"name": "get_weather", "arguments": {"city": "Paris", "days": 3}})"));
  EXPECT_FALSE(Matches(g, R"({"name":"get_weather","arguments":{"days":3}})"));           // city is required
  EXPECT_FALSE(Matches(g, R"({"name":"get_weather","arguments":{"city":"P","days":9}})"));  // days <= 7
  EXPECT_FALSE(Matches(g, R"({"name":"other","arguments":{"city":"Paris"}})"));
  EXPECT_FALSE(Matches(g, "It is sunny."));
  // The tools are described in a system message put first.
  ASSERT_EQ(job.messages.size(), 2u);
  EXPECT_EQ(job.messages[0].role(), "system");
  EXPECT_NE(job.messages[0].content().find("get_weather: Weather forecast"), std::string::npos);
  EXPECT_NE(job.messages[0].content().find(kWeather), std::string::npos);
}

TEST(ToolCallsTest, AutoAllowsPlainTextOrACallStartingWithABrace) {
  GenerateJob job = ChatJob({Tool("get_weather", kWeather), Tool("now", "")}, "");
  v1::ChatMessage sys;
  sys.set_role("system");
  sys.set_content("Be brief.");
  job.messages.insert(job.messages.begin(), sys);
  ASSERT_TRUE(ApplyTools(&job).ok());
  EXPECT_EQ(job.tool_mode, ToolMode::kAuto);
  const std::string& g = job.sampling.grammar();
  EXPECT_TRUE(Matches(g, "It is sunny in Paris.\nSee you {later}."));
  EXPECT_TRUE(Matches(g, ""));
  EXPECT_TRUE(Matches(g, R"({"name":"now","arguments":{}})"));
  EXPECT_TRUE(Matches(g, R"({"name":"get_weather","arguments":{"city":"Paris"}})"));
  EXPECT_FALSE(Matches(g, R"({"name":"now","arguments":{"x":1}})"));
  EXPECT_FALSE(Matches(g, "{ not a call"));
  // Appended to the existing system message, not a second one.
  ASSERT_EQ(job.messages.size(), 2u);
  EXPECT_EQ(job.messages[0].content().rfind("Be brief.\n\n", 0), 0u);
  EXPECT_NE(job.messages[0].content().find("plain text"), std::string::npos);
}

TEST(ToolCallsTest, ForcingOneToolAllowsOnlyIt) {
  GenerateJob job = ChatJob({Tool("get_weather", kWeather), Tool("now", "")}, "now");
  ASSERT_TRUE(ApplyTools(&job).ok());
  EXPECT_EQ(job.tool_mode, ToolMode::kRequired);
  EXPECT_EQ(job.tool_names, std::vector<std::string>{"now"});
  EXPECT_TRUE(Matches(job.sampling.grammar(), R"({"name":"now","arguments":{}})"));
  EXPECT_FALSE(Matches(job.sampling.grammar(), R"({"name":"get_weather","arguments":{"city":"Paris"}})"));
}

TEST(ToolCallsTest, NoneAndNoToolsLeaveTheJobAlone) {
  GenerateJob job = ChatJob({Tool("now", "")}, "none");
  ASSERT_TRUE(ApplyTools(&job).ok());
  EXPECT_EQ(job.tool_mode, ToolMode::kNone);
  EXPECT_TRUE(job.sampling.grammar().empty());
  EXPECT_EQ(job.messages.size(), 1u);
  GenerateJob plain = ChatJob({}, "");
  ASSERT_TRUE(ApplyTools(&plain).ok());
  EXPECT_EQ(plain.tool_mode, ToolMode::kNone);
}

TEST(ToolCallsTest, ItRunsOnce) {
  GenerateJob job = ChatJob({Tool("now", "")}, "required");
  ASSERT_TRUE(ApplyTools(&job).ok());
  std::string grammar = job.sampling.grammar();
  ASSERT_TRUE(ApplyTools(&job).ok());  // would refuse its own grammar, and add a second description
  EXPECT_EQ(job.sampling.grammar(), grammar);
  EXPECT_EQ(job.messages.size(), 2u);
}

TEST(ToolCallsTest, BadToolsAreRefusedNamingTheTool) {
  auto error = [](GenerateJob job) {
    absl::Status st = ApplyTools(&job);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    return std::string(st.message());
  };
  EXPECT_NE(error(ChatJob({Tool("bad name", "")}, "")).find("tools[0]"), std::string::npos);
  EXPECT_NE(error(ChatJob({Tool("f", ""), Tool("f", "")}, "")).find("twice"), std::string::npos);
  EXPECT_NE(error(ChatJob({Tool("f", "")}, "g")).find("tool_choice names 'g'"), std::string::npos);
  EXPECT_NE(error(ChatJob({}, "required")).find("needs tools"), std::string::npos);
  std::string unsupported = error(ChatJob({Tool("ok", ""), Tool("when", R"({"type":"string","format":"date"})")}, ""));
  EXPECT_NE(unsupported.find("tools[1] ('when')"), std::string::npos) << unsupported;
  EXPECT_NE(unsupported.find("format"), std::string::npos) << unsupported;
  GenerateJob with_schema = ChatJob({Tool("f", "")}, "");
  with_schema.sampling.set_json_schema(R"({"type":"object"})");
  EXPECT_NE(error(with_schema).find("cannot be combined"), std::string::npos);
}

TEST(ToolCallsTest, ParseToolCallAcceptsOnlyACallOfAKnownTool) {
  auto call = ParseToolCall(R"({"name": "get_weather", "arguments": {"city": "Paris", "days": 2}})", {"get_weather"});
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->name(), "get_weather");
  EXPECT_EQ(call->arguments_json(), R"({"city":"Paris","days":2})");  // compact, order kept
  EXPECT_FALSE(ParseToolCall(R"({"name":"other","arguments":{}})", {"get_weather"}));
  EXPECT_FALSE(ParseToolCall(R"({"name":"get_weather","arguments":{"city":"Par)", {"get_weather"}));  // truncated
  EXPECT_FALSE(ParseToolCall(R"({"name":"get_weather","arguments":"x"})", {"get_weather"}));
  EXPECT_FALSE(ParseToolCall("sunny", {"get_weather"}));
}

TEST(ToolCallsTest, FilterPassesTextAndHoldsACall) {
  ToolCallFilter text(ToolMode::kAuto, {"now"});
  EXPECT_EQ(text.Push(""), "");  // nothing decided yet
  EXPECT_TRUE(text.holding());
  EXPECT_EQ(text.Push("Hello"), "Hello");
  EXPECT_FALSE(text.holding());
  EXPECT_EQ(text.Push(" {x}"), " {x}");
  auto t = text.Finish("!");
  EXPECT_EQ(t.text, "!");
  EXPECT_FALSE(t.call);

  ToolCallFilter call(ToolMode::kAuto, {"now"});
  EXPECT_EQ(call.Push("{\"na"), "");
  EXPECT_EQ(call.Push("me\":\"now\",\"arguments\":{"), "");
  auto c = call.Finish("}}");
  ASSERT_TRUE(c.call.has_value());
  EXPECT_EQ(c.call->name(), "now");
  EXPECT_EQ(c.call->arguments_json(), "{}");
  EXPECT_EQ(c.text, "");

  // Required, but cut short (max_tokens): the text comes back as text.
  ToolCallFilter cut(ToolMode::kRequired, {"now"});
  EXPECT_EQ(cut.Push("{\"name\":\"no"), "");
  auto k = cut.Finish("");
  EXPECT_FALSE(k.call);
  EXPECT_EQ(k.text, "{\"name\":\"no");

  // Auto with nothing before the end: decided by the tail.
  ToolCallFilter tail_only(ToolMode::kAuto, {"now"});
  auto e = tail_only.Finish("{\"name\":\"now\",\"arguments\":{}}");
  ASSERT_TRUE(e.call.has_value());
}

}  // namespace
}  // namespace llmesh::gateway
