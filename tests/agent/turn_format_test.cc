// The turn schema the loop asks the engine to enforce, and the parser that
// reads turns back (what it accepts and what it refuses).
#include "llmesh/agent/turn_format.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "llmesh/agent/builtin_tools.h"
#include "nlohmann/json.hpp"

namespace llmesh::agent {
namespace {

using Json = nlohmann::ordered_json;

Json Parse(const std::string& s) {
  Json j = Json::parse(s, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << s;
  return j;
}

v1::ToolSpec Spec(const std::string& name, const std::string& schema) {
  v1::ToolSpec s;
  s.set_name(name);
  s.set_parameters_json_schema(schema);
  return s;
}

// The i-th branch of a oneOf, following its $ref.
const Json& Branch(const Json& schema, size_t i) {
  const std::string ref = schema["oneOf"][i]["$ref"].get<std::string>();
  EXPECT_EQ(ref.rfind("#/$defs/", 0), 0u) << ref;
  return schema["$defs"][ref.substr(8)];
}

TEST(TurnSchemaTest, AnswerOnly) {
  auto s = BuildTurnSchema({}, /*allow_answer=*/true);
  ASSERT_TRUE(s.ok()) << s.status();
  Json j = Parse(*s);
  EXPECT_FALSE(j.contains("oneOf"));
  EXPECT_EQ(j["required"], Json::array({"final_answer"}));
  EXPECT_EQ(j["additionalProperties"], false);
}

TEST(TurnSchemaTest, OneBranchPerToolPlusAnswerInDeclaredOrder) {
  auto specs = BuiltinToolSpecs(/*with_rag_search=*/true);
  auto s = BuildTurnSchema(specs, /*allow_answer=*/true);
  ASSERT_TRUE(s.ok()) << s.status();
  Json j = Parse(*s);
  ASSERT_TRUE(j.contains("oneOf"));
  ASSERT_EQ(j["oneOf"].size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    const Json& b = Branch(j, i);
    EXPECT_EQ(b["properties"]["tool"]["const"], specs[i].name());
    EXPECT_EQ(b["properties"]["arguments"], Parse(specs[i].parameters_json_schema()));
    // thought, tool, arguments: the order the model writes them in.
    std::vector<std::string> keys;
    for (const auto& [k, v] : b["properties"].items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"thought", "tool", "arguments"}));
    EXPECT_EQ(b["additionalProperties"], false);
  }
  EXPECT_TRUE(Branch(j, 3)["properties"].contains("final_answer"));
}

TEST(TurnSchemaTest, ForcedToolHasNoAnswerBranch) {
  auto s = BuildTurnSchema({BuiltinToolSpecs(false)[0]}, /*allow_answer=*/false);
  ASSERT_TRUE(s.ok());
  Json j = Parse(*s);
  EXPECT_FALSE(j.contains("oneOf"));
  EXPECT_EQ(j["properties"]["tool"]["const"], "calculator");
  EXPECT_EQ(s->find("final_answer"), std::string::npos);
}

TEST(TurnSchemaTest, ToolDefinitionsMoveToTheRootAndRefsFollow) {
  auto s = BuildTurnSchema(
      {Spec("geo", R"({"type":"object","properties":{"at":{"$ref":"#/$defs/point"}},)"
                   R"("$defs":{"point":{"type":"object","properties":{"x":{"$ref":"#/definitions/num"}}}},)"
                   R"("definitions":{"num":{"type":"number"}}})")},
      true);
  ASSERT_TRUE(s.ok()) << s.status();
  Json j = Parse(*s);
  EXPECT_EQ(j["$defs"]["geo.point"]["properties"]["x"]["$ref"], "#/$defs/geo.num");
  EXPECT_EQ(j["$defs"]["geo.num"]["type"], "number");
  EXPECT_EQ(Branch(j, 0)["properties"]["arguments"]["properties"]["at"]["$ref"], "#/$defs/geo.point");
  EXPECT_FALSE(Branch(j, 0)["properties"]["arguments"].contains("$defs"));
}

TEST(TurnSchemaTest, Errors) {
  EXPECT_TRUE(absl::IsInvalidArgument(BuildTurnSchema({}, false).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(BuildTurnSchema({Spec("bad", "not json")}, true).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(BuildTurnSchema({Spec("bad", "[1]")}, true).status()));
}

TEST(ParseTurnTest, ToolCall) {
  auto t = ParseTurn(R"({"thought":"add","tool":"calculator","arguments":{"expression":"1+2"}})", {"calculator"}, true);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->is_answer);
  EXPECT_EQ(t->thought, "add");
  EXPECT_EQ(t->tool, "calculator");
  EXPECT_EQ(t->arguments_json, R"({"expression":"1+2"})");
  EXPECT_EQ(TurnToJson(*t), R"({"thought":"add","tool":"calculator","arguments":{"expression":"1+2"}})");
}

TEST(ParseTurnTest, Answer) {
  auto t = ParseTurn(R"({"final_answer": "three"})", {}, true);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->is_answer);
  EXPECT_EQ(t->answer, "three");
  EXPECT_EQ(TurnToJson(*t), R"({"final_answer":"three"})");
}

TEST(ParseTurnTest, RefusesWhatTheTurnDoesNotAllow) {
  auto bad = [](const std::string& text, std::vector<std::string> tools, bool answer, const std::string& why) {
    auto t = ParseTurn(text, tools, answer);
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_TRUE(absl::IsInvalidArgument(t.status()));
    EXPECT_TRUE(absl::StrContains(t.status().message(), why)) << t.status();
  };
  bad(R"({"final_answer":"x")", {}, true, "not valid JSON");       // cut off
  bad(R"("just text")", {}, true, "not a JSON object");
  bad(R"({"final_answer":"x"})", {"calculator"}, false, "tool call was required");
  bad(R"({"final_answer":3})", {}, true, "not a string");
  bad(R"({"tool":"shell","arguments":{}})", {"calculator"}, true, "'shell', which is not allowed");
  bad(R"({"tool":"calculator","arguments":"1+2"})", {"calculator"}, true, "no arguments object");
  bad(R"({"tool":"calculator"})", {"calculator"}, true, "no arguments object");
  bad(R"({"thought":"hm"})", {"calculator"}, true, "neither a final_answer nor a tool");
}

}  // namespace
}  // namespace llmesh::agent
