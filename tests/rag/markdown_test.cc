#include "llmesh/rag/markdown.h"

#include <gtest/gtest.h>

namespace llmesh::rag {
namespace {

TEST(MarkdownTest, PlainTextSplitsParagraphsAtBlankLines) {
  auto s = ParseDocument("First line\ncontinues here.\n\n\nSecond   paragraph.\n", DocFormat::kPlain);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].heading, "");
  EXPECT_EQ(s[0].paragraphs, (std::vector<std::string>{"First line continues here.", "Second paragraph."}));
}

TEST(MarkdownTest, HeadingsStartSectionsWithTheirPath) {
  auto s = ParseDocument("Intro text.\n# Cats\nCats purr.\n## Food\nThey eat fish.\n# Dogs\nDogs bark.\n",
                         DocFormat::kMarkdown);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].heading, "");
  EXPECT_EQ(s[1].heading, "Cats");
  EXPECT_EQ(s[2].heading, "Cats / Food");
  EXPECT_EQ(s[2].paragraphs[0], "They eat fish.");
  EXPECT_EQ(s[3].heading, "Dogs");
}

TEST(MarkdownTest, SetextHeadings) {
  auto s = ParseDocument("Title\n=====\nBody one.\n\nSub\n---\nBody two.\n", DocFormat::kMarkdown);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].heading, "Title");
  EXPECT_EQ(s[1].heading, "Title / Sub");
  EXPECT_EQ(s[1].paragraphs[0], "Body two.");
}

TEST(MarkdownTest, InlineMarkupIsStripped) {
  EXPECT_EQ(StripInlineMarkdown("**bold** and _it_ and `code` and [link](http://x.y) ![alt](i.png)"),
            "bold and it and code and link alt");
  EXPECT_EQ(StripInlineMarkdown("snake_case_name <b>tag</b> <https://a.b/c>"), "snake_case_name  tag  https://a.b/c");
}

TEST(MarkdownTest, ListsQuotesCodeAndTables) {
  auto s = ParseDocument(
      "- first item\n- second item\n\n> quoted text\n\n```cpp\nint x = 1;\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n",
      DocFormat::kMarkdown);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].paragraphs,
            (std::vector<std::string>{"first item", "second item", "quoted text", "int x = 1;", "a b", "1 2"}));
}

TEST(MarkdownTest, EmptyAndHostileInputs) {
  EXPECT_TRUE(ParseDocument("", DocFormat::kMarkdown).empty());
  EXPECT_TRUE(ParseDocument("\n\n  \n", DocFormat::kPlain).empty());
  EXPECT_TRUE(ParseDocument("#\n##\n", DocFormat::kMarkdown).empty());
  auto s = ParseDocument("```\nunterminated fence", DocFormat::kMarkdown);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].paragraphs[0], "unterminated fence");
  (void)ParseDocument(std::string(1000, '['), DocFormat::kMarkdown);
  (void)ParseDocument(std::string("](<\\") + std::string(3, '\0') + "#", DocFormat::kMarkdown);
}

}  // namespace
}  // namespace llmesh::rag
