// StreamingDetokenizer: concatenated deltas == one-shot Decode, and every
// delta is valid UTF-8, over random id sequences for every vocabulary.
#include <gtest/gtest.h>

#include <random>

#include "clean_spaces.h"
#include "llmesh/tokenizer/detokenizer.h"
#include "test_util.h"
#include "unicode.h"

namespace llmesh::tokenizer {
namespace {

using testing::SharedTokenizer;
using testing::VectorPath;

bool ValidUtf8(std::string_view s) { return unicode::FindInvalidUtf8(s) == std::string_view::npos; }

struct Param {
  const char* path_kind;  // vocab name or "stories"
};

std::string PathFor(const std::string& name) {
  if (name == "stories260K") return testing::SharedDir() + "/models/stories260K.gguf";
  return VectorPath(name);
}

class StreamingTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StreamingTest, RandomSequencesMatchOneShotAndStayValid) {
  const Tokenizer& tok = SharedTokenizer(PathFor(GetParam()));
  // Ids whose piece is not a complete UTF-8 string (byte tokens, partial
  // byte-level BPE tokens) are the interesting ones: draw them often.
  std::vector<int32_t> partial;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (!ValidUtf8(tok.TokenToPiece(id))) partial.push_back(id);
  }
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 400; ++iter) {
    DecodeOptions opts;
    opts.skip_special = iter % 2;
    opts.clean_spaces = (iter / 2) % 2;
    const int len = 1 + static_cast<int>(rng() % 40);
    std::vector<int32_t> ids;
    for (int i = 0; i < len; ++i) {
      const uint32_t r = rng() % 10;
      if (r < 4 && !partial.empty()) {
        ids.push_back(partial[rng() % partial.size()]);
      } else if (r == 4) {
        ids.push_back(tok.bos_id() >= 0 ? tok.bos_id() : 0);
      } else {
        ids.push_back(static_cast<int32_t>(rng() % tok.n_vocab()));
      }
    }
    StreamingDetokenizer stream(tok, opts);
    std::string streamed;
    for (int32_t id : ids) {
      auto delta = stream.Push(id);
      ASSERT_TRUE(delta.ok());
      ASSERT_TRUE(ValidUtf8(*delta)) << "invalid delta at iter " << iter;
      streamed += *delta;
    }
    const std::string tail = stream.Flush();
    ASSERT_TRUE(ValidUtf8(tail));
    streamed += tail;
    auto oneshot = tok.Decode(ids, opts);
    ASSERT_TRUE(oneshot.ok());
    ASSERT_EQ(streamed, *oneshot) << "iter " << iter << " ids " << testing::Join(ids);
  }
}

TEST_P(StreamingTest, EncodedTextStreamsBack) {
  const Tokenizer& tok = SharedTokenizer(PathFor(GetParam()));
  const std::string text = "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3 caf\xC3\xA9";
  auto ids = tok.Encode(text, true, false);
  ASSERT_TRUE(ids.ok());
  StreamingDetokenizer stream(tok, DecodeOptions{.skip_special = true});
  std::string streamed;
  for (int32_t id : *ids) streamed += *stream.Push(id);
  streamed += stream.Flush();
  EXPECT_EQ(streamed, *tok.Decode(*ids, true));
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, StreamingTest,
                         ::testing::Values("llama-spm", "gpt-2", "bert-bge", "stories260K"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

TEST(Streaming, HoldsIncompleteCharacterUntilComplete) {
  const Tokenizer& tok = SharedTokenizer(VectorPath("llama-spm"));
  // U+1F999 as four byte-fallback tokens (<0xF0> is id 3 + 0xF0).
  StreamingDetokenizer stream(tok);
  EXPECT_EQ(*stream.Push(3 + 0xF0), "");
  EXPECT_EQ(*stream.Push(3 + 0x9F), "");
  EXPECT_EQ(*stream.Push(3 + 0xA6), "");
  EXPECT_EQ(*stream.Push(3 + 0x99), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(*stream.Push(3 + 0xE4), "");
  EXPECT_EQ(stream.Flush(), "\xEF\xBF\xBD");  // truncated character at end of stream
  EXPECT_FALSE(stream.Push(-1).ok());
  EXPECT_FALSE(stream.Push(32000).ok());
}

TEST(Streaming, FirstSpaceAfterBosIsStripped) {
  const Tokenizer& tok = SharedTokenizer(testing::SharedDir() + "/models/stories260K.gguf");
  StreamingDetokenizer stream(tok, DecodeOptions{.skip_special = true});
  std::string out;
  for (int32_t id : {1, 403, 407, 261, 378}) out += *stream.Push(id);
  out += stream.Flush();
  EXPECT_EQ(out, "Once upon a time");
}

// llama.cpp's in-place clean_spaces passes, transcribed as the reference.
std::string ReferenceClean(std::string text) {
  int32_t total = static_cast<int32_t>(text.size());
  const int32_t total1 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total1; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
    text[total++] = x;
  }
  const int32_t total2 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total2; ++i) {
    const char x = text[i];
    if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
      total--;
      text[++i] = '\0';
    }
    text[total++] = x;
  }
  const int32_t total3 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total3; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
      const char x1 = text[i + 1];
      if (x1 == 's' || x1 == 'm') {
        total--;
      } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
        const char x2 = text[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
      }
    }
    text[total++] = x;
  }
  text.resize(total);
  return text;
}

TEST(CleanSpaces, StreamingFilterMatchesLlamaCppPassesForAnySplit) {
  std::mt19937 rng(99);
  const std::string alphabet = "  ''smrevtdl?.,!a";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int len = static_cast<int>(rng() % 12);
    for (int i = 0; i < len; ++i) text.push_back(alphabet[rng() % alphabet.size()]);
    CleanSpacesFilter f;
    std::string out;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = 1 + rng() % 3;
      f.Feed(std::string_view(text).substr(pos, n), &out);
      pos += n;
    }
    f.Finish(&out);
    ASSERT_EQ(out, ReferenceClean(text)) << "'" << text << "'";
  }
}

}  // namespace
}  // namespace llmesh::tokenizer
