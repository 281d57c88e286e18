// The prompt the model reads: the system message lists the tools by
// signature, tool results become user observations, runs of one role merge,
// and the history window starts at a user message.
#include "llmesh/agent/prompt.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "llmesh/agent/builtin_tools.h"

namespace llmesh::agent {
namespace {

v1::ChatMessage Msg(const std::string& role, const std::string& content, const std::string& name = "",
                    const std::string& call_id = "") {
  v1::ChatMessage m;
  m.set_role(role);
  m.set_content(content);
  m.set_name(name);
  m.set_tool_call_id(call_id);
  return m;
}

TEST(PromptTest, ToolSignatures) {
  auto specs = BuiltinToolSpecs(true);
  EXPECT_EQ(ToolSignature(specs[0]), "calculator(expression: string)");
  EXPECT_EQ(ToolSignature(specs[1]), "current_time()");
  EXPECT_EQ(ToolSignature(specs[2]), "rag_search(query: string, top_k?: integer)");
  v1::ToolSpec odd;
  odd.set_name("odd");
  odd.set_parameters_json_schema(R"({"type":"object","properties":{"mode":{"enum":["a","b"]},"v":{}}})");
  EXPECT_EQ(ToolSignature(odd), R"(odd(mode?: "a" | "b", v?: any))");
}

TEST(PromptTest, SystemMessage) {
  std::string with_tools = SystemMessage("Be brief.", BuiltinToolSpecs(false));
  EXPECT_TRUE(absl::StartsWith(with_tools, "Be brief.\nTools:\n- calculator(expression: string): Evaluates"));
  EXPECT_TRUE(absl::StrContains(with_tools, "- current_time(): The current date"));
  EXPECT_TRUE(absl::StrContains(with_tools, R"({"final_answer": "..."})"));
  std::string bare = SystemMessage("", {});
  EXPECT_TRUE(absl::StartsWith(bare, kDefaultSystemPrompt));
  EXPECT_FALSE(absl::StrContains(bare, "Tools:"));
}

TEST(PromptTest, ToolResultsBecomeUserObservationsAndRolesMerge) {
  std::vector<v1::ChatMessage> history = {
      Msg("user", "what is 2+2?"),
      Msg("assistant", R"({"tool":"calculator","arguments":{"expression":"2+2"}})"),
      Msg("tool", "4", "calculator", "call_1"),
      Msg("assistant", R"({"final_answer":"4"})"),
      Msg("user", "and 3+3?"),
      Msg("user", "please"),
  };
  auto p = BuildPrompt("SYS", history, 100);
  ASSERT_EQ(p.size(), 6u);
  EXPECT_EQ(p[0].role(), "system");
  EXPECT_EQ(p[0].content(), "SYS");
  EXPECT_EQ(p[1].role(), "user");
  EXPECT_EQ(p[2].role(), "assistant");
  EXPECT_EQ(p[3].role(), "user");
  EXPECT_EQ(p[3].content(), "Result of calculator (call_1): 4");
  EXPECT_EQ(p[4].role(), "assistant");
  EXPECT_EQ(p[5].role(), "user");
  EXPECT_EQ(p[5].content(), "and 3+3?\n\nplease");
}

TEST(PromptTest, HistoryWindowStartsAtAUserMessage) {
  std::vector<v1::ChatMessage> history = {Msg("user", "u1"), Msg("assistant", "a1"), Msg("tool", "t1", "x", "c1"),
                                          Msg("assistant", "a2"), Msg("user", "u2"), Msg("assistant", "a3")};
  // The last 4 begin with a tool message (shown as user): kept.
  auto p = BuildPrompt("S", history, 4);
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[1].content(), "Result of x (c1): t1");
  // The last 3 begin with an assistant turn: dropped up to u2.
  p = BuildPrompt("S", history, 3);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[1].content(), "u2");
  EXPECT_EQ(p[2].content(), "a3");
}

}  // namespace
}  // namespace llmesh::agent
