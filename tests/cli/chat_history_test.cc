// ChatHistory: which turns of a chat fit the model's context.
#include "chat_history.h"

#include <gtest/gtest.h>

namespace llmesh::cli {
namespace {

std::vector<std::string> Contents(const ChatHistory& h) {
  std::vector<std::string> out;
  for (const auto& m : h.Messages()) out.push_back(m.content());
  return out;
}

// The stories260K session of issue #14: 512-token context, 256-token
// replies, each answer ~250 tokens. The third question used to overflow.
TEST(ChatHistoryTest, DropsTheOldestTurnsSoThePromptAndTheReplyFit) {
  ChatHistory h("be brief");
  h.SetSystemTokens(4);
  for (int turn = 0; turn < 20; ++turn) {
    h.Add("user", "q" + std::to_string(turn), 10);
    ASSERT_TRUE(h.Fit(512, 256).ok()) << turn;
    EXPECT_LE(h.PromptTokens() + 256, 512) << turn;
    EXPECT_EQ(h.Messages().front().role(), "system");
    EXPECT_EQ(h.Messages()[1].role(), "user");  // a turn's answer goes with its question
    EXPECT_EQ(h.Messages().back().content(), "q" + std::to_string(turn));
    h.Add("assistant", "a" + std::to_string(turn), 200);
  }
  EXPECT_GT(h.turns_dropped(), 0u);
}

TEST(ChatHistoryTest, KeepsEverythingThatFits) {
  ChatHistory h("");
  h.Add("user", "q0", 5);
  h.Add("assistant", "a0", 5);
  h.Add("user", "q1", 5);
  ASSERT_TRUE(h.Fit(512, 256).ok());
  EXPECT_EQ(Contents(h), (std::vector<std::string>{"q0", "a0", "q1"}));
  EXPECT_EQ(h.turns_dropped(), 0u);
}

TEST(ChatHistoryTest, LearnsTheTemplatesShareFromTheGatewaysCount) {
  ChatHistory h("sys");
  h.SetSystemTokens(10);
  h.Add("user", "q0", 10);
  // system + user + the open assistant turn: 3 frames of 5 template tokens.
  h.Measured(35);
  EXPECT_EQ(h.PromptTokens(), 35);
  h.Add("assistant", "a0", 100);
  h.Add("user", "q1", 10);
  EXPECT_EQ(h.PromptTokens(), 10 + 10 + 100 + 10 + 5 * 5);
  // A bigger template share seen later wins: the estimate errs high.
  h.Measured(10 + 10 + 100 + 10 + 7 * 5);
  EXPECT_EQ(h.PromptTokens(), 10 + 10 + 100 + 10 + 7 * 5);
  h.Measured(0);
  EXPECT_EQ(h.PromptTokens(), 10 + 10 + 100 + 10 + 7 * 5);
  // 165 + 100 > 200: the first turn goes.
  ASSERT_TRUE(h.Fit(200, 100).ok());
  EXPECT_EQ(Contents(h), (std::vector<std::string>{"sys", "q1"}));
}

TEST(ChatHistoryTest, AMessageTooLongForTheContextIsAClearErrorAndDropsNothing) {
  ChatHistory h("sys");
  h.SetSystemTokens(10);
  h.Add("user", "q0", 10);
  h.Add("assistant", "a0", 10);
  h.Add("user", "huge", 400);
  absl::Status st = h.Fit(512, 256);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("the message has 400 tokens"), std::string_view::npos) << st;
  EXPECT_NE(st.message().find("the context holds 512"), std::string_view::npos) << st;
  EXPECT_EQ(h.Messages().size(), 4u);
  h.PopBack();
  EXPECT_EQ(Contents(h), (std::vector<std::string>{"sys", "q0", "a0"}));
}

TEST(ChatHistoryTest, ResetKeepsTheSystemPrompt) {
  ChatHistory h("sys");
  h.SetSystemTokens(3);
  h.Add("user", "q0", 5);
  h.Reset();
  EXPECT_EQ(Contents(h), (std::vector<std::string>{"sys"}));
  EXPECT_EQ(h.Fit(512, 256).code(), absl::StatusCode::kFailedPrecondition);  // nothing to answer
}

TEST(ChatHistoryTest, NeedsTheSystemPromptCounted) {
  ChatHistory h("sys");
  h.Add("user", "q0", 5);
  EXPECT_EQ(h.Fit(512, 256).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace llmesh::cli
