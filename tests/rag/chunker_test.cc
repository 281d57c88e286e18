#include "llmesh/rag/chunker.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fakes.h"

namespace llmesh::rag {
namespace {

using testing::FakeTokenCounter;

int Words(const std::string& s) { return static_cast<int>(std::vector<std::string>(absl::StrSplit(s, absl::ByAnyChar(" \n"), absl::SkipEmpty())).size()); }

std::string Sentence(int i, int words) {
  std::string s = absl::StrCat("Sentence", i);
  for (int w = 1; w < words; ++w) absl::StrAppend(&s, " w", i, "x", w);
  return s + ".";
}

TEST(ChunkerTest, SplitsSentences) {
  EXPECT_EQ(SplitSentences("One. Two! Three? four. \"Quoted.\" Five"),
            (std::vector<std::string>{"One.", "Two!", "Three? four.", "\"Quoted.\"", "Five"}));
  EXPECT_EQ(SplitSentences("Version 1.5 is out."), (std::vector<std::string>{"Version 1.5 is out."}));
}

TEST(ChunkerTest, ChunksRespectTheTokenBudgetAndOverlap) {
  std::string para;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&para, Sentence(i, 10), " ");
  FakeTokenCounter counter;
  Chunker chunker({64, 12});
  auto chunks = chunker.Split({{"", {para}}}, counter, "m");
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  ASSERT_GT(chunks->size(), 5u);
  for (const auto& c : *chunks) EXPECT_LE(Words(c.text), 64) << c.text;
  // Consecutive chunks share the sentence(s) of the overlap.
  for (size_t i = 1; i < chunks->size(); ++i) {
    std::string prev_tail = (*chunks)[i - 1].text.substr((*chunks)[i - 1].text.rfind("Sentence"));
    EXPECT_EQ((*chunks)[i].text.find(prev_tail), 0u) << i;
  }
  // Every sentence is somewhere.
  for (int i = 0; i < 40; ++i) {
    bool found = false;
    for (const auto& c : *chunks) found |= c.text.find(Sentence(i, 10)) != std::string::npos;
    EXPECT_TRUE(found) << i;
  }
}

TEST(ChunkerTest, PrefersParagraphBoundaries) {
  // Paragraphs of 30 words; budget 64: each chunk should hold whole paragraphs.
  std::vector<std::string> paras;
  for (int p = 0; p < 6; ++p) paras.push_back(Sentence(p * 10, 15) + " " + Sentence(p * 10 + 1, 15));
  FakeTokenCounter counter;
  auto chunks = Chunker({64, 0}).Split({{"", paras}}, counter, "m");
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ((*chunks)[0].text, paras[0] + "\n\n" + paras[1]);
}

TEST(ChunkerTest, LongSentencesAreCutAtWords) {
  std::string s;
  for (int i = 0; i < 500; ++i) absl::StrAppend(&s, "word", i, " ");
  FakeTokenCounter counter;
  auto chunks = Chunker({50, 0}).Split({{"", {s}}}, counter, "m");
  ASSERT_TRUE(chunks.ok());
  EXPECT_GE(chunks->size(), 10u);
  for (const auto& c : *chunks) EXPECT_LE(Words(c.text), 50);
}

TEST(ChunkerTest, SectionsNeverShareAChunkAndCarryTheirHeading) {
  FakeTokenCounter counter;
  auto chunks = Chunker({64, 8}).Split({{"Cats", {"Cats purr."}}, {"Dogs", {"Dogs bark."}}}, counter, "m");
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 2u);
  EXPECT_EQ((*chunks)[0].text, "Cats\n\nCats purr.");
  EXPECT_EQ((*chunks)[1].text, "Dogs\n\nDogs bark.");
}

TEST(ChunkerTest, ValidatesOptions) {
  EXPECT_EQ(ValidateChunking({0, 0})->chunk_tokens, 256);
  EXPECT_EQ(ValidateChunking({0, 0})->overlap_tokens, 32);
  EXPECT_FALSE(ValidateChunking({8, 0}).ok());
  EXPECT_FALSE(ValidateChunking({100, 60}).ok());
  EXPECT_FALSE(ValidateChunking({100, -1}).ok());
  EXPECT_FALSE(ValidateChunking({1 << 20, 0}).ok());
}

}  // namespace
}  // namespace llmesh::rag
