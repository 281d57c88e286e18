#include "llmesh/rag/fusion.h"

#include <gtest/gtest.h>

#include "llmesh/rag/lexical.h"

namespace llmesh::rag {
namespace {

TEST(FusionTest, ReciprocalRankFusionWithK60) {
  auto fused = ReciprocalRankFusion({{1, 2, 3}, {3, 1, 4}});
  ASSERT_EQ(fused.size(), 4u);
  EXPECT_EQ(fused[0].first, 1);  // 1/61 + 1/62
  EXPECT_NEAR(fused[0].second, 1.0 / 61 + 1.0 / 62, 1e-12);
  EXPECT_EQ(fused[1].first, 3);  // 1/63 + 1/61
  EXPECT_EQ(fused[2].first, 2);  // 1/62
  EXPECT_EQ(fused[3].first, 4);  // 1/63
}

TEST(FusionTest, EmptyListsAndTiesAreDeterministic) {
  EXPECT_TRUE(ReciprocalRankFusion({}).empty());
  auto fused = ReciprocalRankFusion({{7}, {5}});
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(fused[0].first, 5);
}

TEST(LexicalTest, FtsQueryQuotesTermsAndDropsSyntax) {
  EXPECT_EQ(BuildFtsQuery("Hello, world!"), "\"hello\" OR \"world\"");
  EXPECT_EQ(BuildFtsQuery("a AND \"b\" NEAR(c) * -d"), "\"a\" OR \"and\" OR \"b\" OR \"near\" OR \"c\" OR \"d\"");
  EXPECT_EQ(BuildFtsQuery("  ...  "), "");
  EXPECT_EQ(BuildFtsQuery("dup dup DUP"), "\"dup\"");
}

}  // namespace
}  // namespace llmesh::rag
