// The turn schemas the loop builds are ones the engine's JSON Schema compiler
// accepts, and the grammar it makes admits exactly the turns ParseTurn reads:
// each built-in tool's call, an answer where allowed, and nothing else.
#include <gtest/gtest.h>

#include "llmesh/agent/builtin_tools.h"
#include "llmesh/agent/turn_format.h"
#include "llmesh/engine/grammar.h"

namespace llmesh::agent {
namespace {

std::shared_ptr<const engine::Grammar> Compile(const std::vector<v1::ToolSpec>& tools, bool allow_answer) {
  auto schema = BuildTurnSchema(tools, allow_answer);
  EXPECT_TRUE(schema.ok()) << schema.status();
  if (!schema.ok()) return nullptr;
  auto text = engine::JsonSchemaToGrammar(*schema);
  EXPECT_TRUE(text.ok()) << text.status() << "\n" << *schema;
  if (!text.ok()) return nullptr;
  auto g = engine::Grammar::Parse(*text);
  EXPECT_TRUE(g.ok()) << g.status() << "\n" << *text;
  return g.ok() ? *g : nullptr;
}

TEST(TurnGrammarTest, EveryBuiltinToolAndTheAnswer) {
  auto g = Compile(BuiltinToolSpecs(/*with_rag_search=*/true), true);
  ASSERT_NE(g, nullptr);
  const char* accepted[] = {
      R"j({"thought":"add them","tool":"calculator","arguments":{"expression":"2*(3+4) - sqrt(16)"}})j",
      R"({"thought":"t","tool":"current_time","arguments":{}})",
      R"({"thought":"look","tool":"rag_search","arguments":{"query":"dragons"}})",
      R"({"thought":"look","tool":"rag_search","arguments":{"query":"dragons","top_k":3}})",
      R"({"final_answer":"14"})",
      R"({"final_answer": "with a space"})",
  };
  for (const char* text : accepted) {
    EXPECT_TRUE(engine::GrammarMatches(g, text)) << text;
    auto names = std::vector<std::string>{"calculator", "current_time", "rag_search"};
    EXPECT_TRUE(ParseTurn(text, names, true).ok()) << text;
  }
  const char* refused[] = {
      R"({"thought":"","tool":"calculator","arguments":{"expression":"1"}})",       // empty thought
      R"({"tool":"calculator","arguments":{"expression":"1"}})",                    // no thought
      R"({"thought":"x","tool":"shell","arguments":{}})",                           // unknown tool
      R"({"thought":"x","tool":"calculator","arguments":{"expression":"1; ls"}})",     // outside the alphabet
      R"({"thought":"x","tool":"calculator","arguments":{}})",                      // missing argument
      R"({"thought":"x","tool":"rag_search","arguments":{"query":"q","top_k":11}})", // out of range
      R"({"thought":"x","tool":"current_time","arguments":{"tz":"utc"}})",        // extra property
      R"({"final_answer":""})",
      R"({"final_answer":"x","extra":1})",
      R"(Once upon a time)",
  };
  for (const char* text : refused) EXPECT_FALSE(engine::GrammarMatches(g, text)) << text;
}

TEST(TurnGrammarTest, ForcedToolAdmitsOnlyThatTool) {
  auto g = Compile({BuiltinToolSpecs(false)[0]}, false);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(engine::GrammarMatches(g, R"({"thought":"x","tool":"calculator","arguments":{"expression":"1+1"}})"));
  EXPECT_FALSE(engine::GrammarMatches(g, R"({"final_answer":"2"})"));
  EXPECT_FALSE(engine::GrammarMatches(g, R"({"thought":"x","tool":"current_time","arguments":{}})"));
}

TEST(TurnGrammarTest, ToolSchemasWithDefinitionsStillCompile) {
  v1::ToolSpec geo;
  geo.set_name("geo");
  geo.set_parameters_json_schema(
      R"({"type":"object","properties":{"at":{"$ref":"#/$defs/point"}},"required":["at"],)"
      R"("$defs":{"point":{"type":"object","properties":{"x":{"type":"integer"},"y":{"type":"integer"}},)"
      R"("required":["x","y"]}}})");
  auto g = Compile({geo, BuiltinToolSpecs(false)[0]}, true);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(engine::GrammarMatches(g, R"({"thought":"x","tool":"geo","arguments":{"at":{"x":1,"y":-2}}})"));
  EXPECT_FALSE(engine::GrammarMatches(g, R"({"thought":"x","tool":"geo","arguments":{"at":{"x":1}}})"));
}

}  // namespace
}  // namespace llmesh::agent
