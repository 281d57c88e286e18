// Encode/Decode behaviour beyond the reference vectors: special tokens,
// errors, round trips, and vocabularies built in memory.
#include <gtest/gtest.h>

#include "llmesh/tokenizer/tokenizer.h"
#include "llmesh/tokenizer/vocab.h"
#include "test_util.h"
#include "unicode.h"
#include "wpm.h"

namespace llmesh::tokenizer {
namespace {

using testing::LoadVectors;
using testing::SharedTokenizer;
using testing::VectorPath;

const Tokenizer& Spm() { return SharedTokenizer(VectorPath("llama-spm")); }
const Tokenizer& Gpt2() { return SharedTokenizer(VectorPath("gpt-2")); }
const Tokenizer& Bert() { return SharedTokenizer(VectorPath("bert-bge")); }

TEST(SpecialTokens, ParsedOnlyWhenAsked) {
  const Tokenizer& tok = Spm();
  auto plain = tok.Encode("Hello</s>", false, /*parse_special=*/false);
  auto parsed = tok.Encode("Hello</s>", false, /*parse_special=*/true);
  ASSERT_TRUE(plain.ok() && parsed.ok());
  EXPECT_EQ(parsed->back(), tok.eos_id());
  for (int32_t id : *plain) EXPECT_FALSE(tok.is_control(id)) << id;
  EXPECT_GT(plain->size(), parsed->size());
}

TEST(SpecialTokens, SpmPrefixesSpaceAfterSpecial) {
  const Tokenizer& tok = Spm();
  // As llama.cpp: text after a special token gets the SentencePiece space prefix.
  auto a = tok.Encode("<s>Hello", false, true);
  auto b = tok.Encode("Hello", true, false);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(SpecialTokens, Gpt2EndOfText) {
  const Tokenizer& tok = Gpt2();
  auto parsed = tok.Encode("a<|endoftext|>b", false, true);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[1], 50256);
  EXPECT_TRUE(tok.is_eog(50256));
  auto plain = tok.Encode("a<|endoftext|>b", false, false);
  ASSERT_TRUE(plain.ok());
  for (int32_t id : *plain) EXPECT_NE(id, 50256);
}

TEST(SpecialTokens, BertClsSep) {
  const Tokenizer& tok = Bert();
  auto ids = tok.Encode("hello world", /*add_special=*/true, false);
  ASSERT_TRUE(ids.ok());
  ASSERT_GE(ids->size(), 3u);
  EXPECT_EQ(ids->front(), 101);
  EXPECT_EQ(ids->back(), 102);
  auto text = tok.Decode(*ids, /*skip_special=*/true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, " hello world");  // llama.cpp keeps WordPiece's word-initial space
  auto parsed = tok.Encode("[CLS] hi [SEP]", false, true);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->front(), 101);
  EXPECT_EQ(parsed->back(), 102);
}

TEST(Errors, InvalidUtf8IsRejected) {
  for (const Tokenizer* tok : {&Spm(), &Gpt2(), &Bert()}) {
    for (std::string bad : {std::string("abc\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),
                            std::string("\xc0\xaf"), std::string("\xf4\x90\x80\x80")}) {
      auto r = tok->Encode(bad, true, true);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find("UTF-8"), std::string_view::npos);
    }
  }
}

TEST(Errors, OutOfRangeIdIsRejectedWithTheId) {
  const Tokenizer& tok = Spm();
  for (int32_t bad : {-1, 32000, 1 << 30}) {
    std::vector<int32_t> ids = {1, 15043, bad};
    auto r = tok.Decode(ids);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(std::to_string(bad)), std::string_view::npos) << r.status();
  }
  EXPECT_EQ(tok.TokenToPiece(-5), "");
}

TEST(RoundTrip, SpmAndBpeAreLossless) {
  for (const char* name : {"llama-spm", "gpt-2"}) {
    const Tokenizer& tok = SharedTokenizer(VectorPath(name));
    DecodeOptions raw;
    raw.clean_spaces = false;
    raw.skip_special = true;
    for (const auto& c : LoadVectors(VectorPath(name))) {
      for (bool add_special : {false, true}) {
        auto ids = tok.Encode(c.input, add_special, false);
        ASSERT_TRUE(ids.ok());
        auto text = tok.Decode(*ids, raw);
        ASSERT_TRUE(text.ok());
        EXPECT_EQ(*text, c.input) << name << " add_special=" << add_special;
      }
    }
  }
}

// WordPiece is lossy by design; what survives is the normalised word list,
// each word prefixed by a space (documented behaviour).
TEST(RoundTrip, WordPieceGivesNormalisedWords) {
  const Tokenizer& tok = Bert();
  DecodeOptions raw;
  raw.clean_spaces = false;
  for (const auto& c : LoadVectors(VectorPath("bert-bge"))) {
    auto ids = tok.Encode(c.input, false, false);
    ASSERT_TRUE(ids.ok());
    if (std::find(ids->begin(), ids->end(), tok.unk_id()) != ids->end()) continue;
    std::string expected;
    for (const std::string& w : WpmPreprocess(c.input)) expected += " " + w;
    auto text = tok.Decode(*ids, raw);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, expected) << c.input;
  }
  auto ids = tok.Encode("Héllo, WORLD!", false, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*tok.Decode(*ids), " hello, world!");  // clean-up joins " ," and " !"
}

TEST(Decode, SpmStripsOnlyTheEncoderSpace) {
  const Tokenizer& tok = Spm();
  auto ids = tok.Encode("Hello world", true, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*tok.Decode(*ids, true), "Hello world");
  EXPECT_EQ(*tok.Decode(*ids, false), "<s>Hello world");
  std::vector<int32_t> tail(ids->begin() + 2, ids->end());  // "▁world" mid-stream
  EXPECT_EQ(*tok.Decode(tail), "world");
}

TEST(Decode, Gpt2CleanSpacesLikeLlamaCpp) {
  const Tokenizer& tok = Gpt2();
  auto ids = tok.Encode("Hello , world ! I 've it 's", false, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*tok.Decode(*ids), "Hello, world! I've it's");
}

// --- Vocabularies built in memory -------------------------------------------

VocabData TinySpm() {
  VocabData d;
  d.model = "llama";
  d.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab", "<tool>"};
  d.scores = {0, 0, 0, -1, -2, -2, -1.5f, -0.5f, 0};
  d.token_types = {2, 3, 3, 1, 1, 1, 1, 1, 4};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    snprintf(buf, sizeof buf, "<0x%02X>", b);
    d.tokens.push_back(buf);
    d.scores.push_back(0);
    d.token_types.push_back(6);
  }
  return d;
}

TEST(InMemoryVocab, ScoreDrivenMergesAndByteFallback) {
  auto vocab = Vocab::FromData(TinySpm());
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto tok = Tokenizer::FromVocab(std::move(*vocab));
  ASSERT_TRUE(tok.ok());
  // "▁ab": "ab" (-0.5) beats "▁a" (-1.5).
  auto ids = (*tok)->Encode("ab", false, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{3, 7}));
  // "é" is not in the vocabulary: two byte tokens (0xC3 0xA9 -> ids 9+0xC3, 9+0xA9).
  ids = (*tok)->Encode("\xC3\xA9", false, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{3, 9 + 0xC3, 9 + 0xA9}));
  EXPECT_EQ(*(*tok)->Decode(*ids), "\xC3\xA9");
}

TEST(InMemoryVocab, UserDefinedTokensAlwaysMatchLikeLlamaCpp) {
  auto tok = Tokenizer::FromVocab(*Vocab::FromData(TinySpm()));
  ASSERT_TRUE(tok.ok());
  auto ids = (*tok)->Encode("a<tool>b", false, /*parse_special=*/false);
  ASSERT_TRUE(ids.ok());
  EXPECT_NE(std::find(ids->begin(), ids->end(), 8), ids->end());
  ids = (*tok)->Encode("a<s>b", false, /*parse_special=*/false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(std::find(ids->begin(), ids->end(), 1), ids->end());
}

TEST(InMemoryVocab, MalformedByteTokensAreRejected) {
  for (const char* bad : {"<0x-1>", "<0xZZ>", "<0x100>", "<0x1>", "0x41"}) {
    VocabData d = TinySpm();
    d.tokens[9 + 0x41] = bad;
    auto v = Vocab::FromData(d);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find("BYTE"), std::string_view::npos);
  }
}

TEST(InMemoryVocab, StructuralErrors) {
  VocabData d = TinySpm();
  d.scores.pop_back();
  EXPECT_FALSE(Vocab::FromData(d).ok());
  d = TinySpm();
  d.token_types[4] = 42;
  EXPECT_FALSE(Vocab::FromData(d).ok());
  d = TinySpm();
  d.model = "rwkv";
  EXPECT_FALSE(Vocab::FromData(d).ok());
  d = TinySpm();
  d.tokens.clear();
  d.scores.clear();
  d.token_types.clear();
  EXPECT_FALSE(Vocab::FromData(d).ok());
}

TEST(InMemoryVocab, UnknownPreTokenizerIsAClearError) {
  VocabData d;
  d.model = "gpt2";
  d.pre = "no-such-pre";
  d.tokens = {"a", "b", "ab"};
  d.merges = {"a b"};
  auto v = Vocab::FromData(d);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("no-such-pre"), std::string_view::npos);
}

TEST(InMemoryVocab, EveryKnownPreTokenizerCompilesAndSplits) {
  const std::string text =
      "Hello world's 12345 \xE4\xBD\xA0\xE5\xA5\xBD  \n\n\tfoo.bar() != baz; caf\xC3\xA9 \xF0\x9F\xA6\x99";
  for (const char* pre : {"default", "llama3", "llama-bpe", "gpt-2", "qwen2", "deepseek-llm",
                          "deepseek-coder", "falcon", "starcoder", "refact", "mpt", "gpt-neox",
                          "tekken", "gpt-4o", "poro-chat", "viking", "command-r"}) {
    VocabData d = *[] {
      // Byte-level vocab: the 256 byte characters, no merges beyond one.
      VocabData v;
      v.model = "gpt2";
      for (int b = 0; b < 256; ++b) {
        std::string s;
        const char raw = static_cast<char>(b);
        unicode::ByteEncode(std::string_view(&raw, 1), &s);
        v.tokens.push_back(s);
      }
      v.merges = {"H e"};
      v.tokens.push_back("He");
      return std::optional<VocabData>(v);
    }();
    d.pre = pre;
    auto v = Vocab::FromData(d);
    ASSERT_TRUE(v.ok()) << pre << ": " << v.status();
    auto tok = Tokenizer::FromVocab(std::move(*v));
    ASSERT_TRUE(tok.ok()) << pre << ": " << tok.status();
    auto ids = (*tok)->Encode(text, false, false);
    ASSERT_TRUE(ids.ok()) << pre;
    DecodeOptions raw;
    raw.clean_spaces = false;
    EXPECT_EQ(*(*tok)->Decode(*ids, raw), text) << pre;
    EXPECT_EQ((*ids)[0], 256) << pre << " did not merge 'He'";
  }
}

}  // namespace
}  // namespace llmesh::tokenizer
