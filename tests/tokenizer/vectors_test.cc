// llama.cpp's test-tokenizer-0 reference vectors: every case of every vocabulary.
#include <gtest/gtest.h>

#include "llmesh/tokenizer/tokenizer.h"
#include "test_util.h"

namespace llmesh::tokenizer {
namespace {

using testing::Join;
using testing::LoadVectors;
using testing::SharedTokenizer;
using testing::VectorPath;

class VectorsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VectorsTest, EveryCaseMatchesReference) {
  const std::string path = VectorPath(GetParam());
  const Tokenizer& tok = SharedTokenizer(path);
  const auto cases = LoadVectors(path);
  ASSERT_EQ(cases.size(), 46u) << "vector file format changed?";
  int failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    auto ids = tok.Encode(cases[i].input, /*add_special=*/false, /*parse_special=*/false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    if (*ids != cases[i].expected) {
      ++failed;
      ADD_FAILURE() << GetParam() << " case " << i << " input '" << cases[i].input << "'\n"
                    << "  expected: " << Join(cases[i].expected) << "\n"
                    << "  actual:   " << Join(*ids);
    }
  }
  EXPECT_EQ(failed, 0) << failed << " of " << cases.size() << " cases differ";
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, VectorsTest,
                         ::testing::Values("llama-spm", "gpt-2", "bert-bge"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

TEST(Stories260K, OnceUponATime) {
  const Tokenizer& tok = SharedTokenizer(testing::SharedDir() + "/models/stories260K.gguf");
  auto ids = tok.Encode("Once upon a time", /*add_special=*/true, /*parse_special=*/false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  auto text = tok.Decode(*ids, /*skip_special=*/true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "Once upon a time");
}

}  // namespace
}  // namespace llmesh::tokenizer
