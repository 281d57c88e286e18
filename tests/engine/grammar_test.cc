// GBNF parser, matcher and GrammarConstraint: parse errors by kind, accept /
// reject by hand, masks checked against a token-by-token reference, and the
// issue's proof: 100 high-temperature samples per grammar from stories260K
// all stay inside the grammar.
#include <random>
#include <regex>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "grammar_test_util.h"
#include "gtest/gtest.h"
#include "llmesh/engine/grammar.h"

namespace llmesh::engine {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const Grammar> ParseOrDie(std::string_view text) {
  auto g = Grammar::Parse(text);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *g : nullptr;
}

std::string ParseError(std::string_view text, const GrammarLimits& limits = {}) {
  auto g = Grammar::Parse(text, limits);
  if (g.ok()) return "(parsed)";
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(g.status().message());
}

constexpr const char* kArithmetic = R"gbnf(
# arithmetic with precedence
root   ::= expr
expr   ::= term (("+" | "-") term)*
term   ::= factor (("*" | "/") factor)*
factor ::= [0-9]+ | "(" expr ")" | "-" factor
)gbnf";

// llama.cpp's grammars/json.gbnf.
constexpr const char* kJson = R"gbnf(
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

ws ::= | " " | "\n" [ \t]{0,20}
)gbnf";

// ---- parser ---------------------------------------------------------------------

TEST(GrammarParse, ValidGrammarsParse) {
  for (const char* g : {kArithmetic, kJson, "root ::= \"a\"", "root ::= [a-z]{2,5} x?\nx ::= .",
                        "root ::= \"\\x41\\u00e9\\U0001F600\\n\\\"\" [^\\]\\\\]", "root ::= ",
                        "root ::= (\"a\" | \"b\" (\"c\")*)+ # comment\n# only a comment\n",
                        "root ::= a\na ::= \"x\" a | \"y\"", "root ::= [-a-]"}) {
    auto parsed = Grammar::Parse(g);
    EXPECT_TRUE(parsed.ok()) << g << "\n" << parsed.status();
  }
}

TEST(GrammarParse, EachMalformedKindHasItsError) {
  EXPECT_THAT(ParseError("foo ::= \"a\""), HasSubstr("no 'root' rule"));
  EXPECT_THAT(ParseError("root ::= \"a\"\nfoo ::= bar"), HasSubstr("2:9: undefined rule 'bar'"));
  EXPECT_THAT(ParseError("root ::= \"abc"), HasSubstr("1:10: unterminated string literal"));
  EXPECT_THAT(ParseError("root ::= [abc"), HasSubstr("unterminated character class"));
  EXPECT_THAT(ParseError("root ::= []"), HasSubstr("empty character class"));
  EXPECT_THAT(ParseError("root ::= (\"a\""), HasSubstr("unclosed '('"));
  EXPECT_THAT(ParseError("root ::= \"\\q\""), HasSubstr("unknown escape"));
  EXPECT_THAT(ParseError("root ::= \"\\x4\""), HasSubstr("hex digits"));
  EXPECT_THAT(ParseError("root ::= [z-a]"), HasSubstr("reversed"));
  EXPECT_THAT(ParseError("root \"a\""), HasSubstr("expected '::='"));
  EXPECT_THAT(ParseError("::= \"a\""), HasSubstr("expected a rule name"));
  EXPECT_THAT(ParseError("root ::= * \"a\""), HasSubstr("without an item"));
  EXPECT_THAT(ParseError("root ::= \"a\"**"), HasSubstr("without an item"));
  EXPECT_THAT(ParseError("root ::= \"a\"{3,1}"), HasSubstr("max < min"));
  EXPECT_THAT(ParseError("root ::= \"a\"{x}"), HasSubstr("expected a number"));
  EXPECT_THAT(ParseError("root ::= \"a\" )"), HasSubstr("unexpected ')'"));
  EXPECT_THAT(ParseError("root ::= \"a\"\nroot ::= \"b\""), HasSubstr("2:1: rule 'root' is defined twice"));
  EXPECT_THAT(ParseError("root ::= \"\xff\""), HasSubstr("invalid UTF-8"));
}

TEST(GrammarParse, LeftRecursionIsRejected) {
  EXPECT_THAT(ParseError("root ::= root \"a\" | \"b\""), HasSubstr("left recursion"));
  EXPECT_THAT(ParseError("root ::= x\nx ::= y \"a\"\ny ::= x | \"b\""), HasSubstr("left recursion"));
  // Through a rule that can match nothing.
  EXPECT_THAT(ParseError("root ::= e root \"a\" | \"b\"\ne ::= \"c\"?"), HasSubstr("left recursion"));
  // A repeated item that can be empty would loop the same way.
  EXPECT_THAT(ParseError("root ::= (\"a\"?)*"), HasSubstr("left recursion"));
  // Right recursion is fine.
  EXPECT_TRUE(Grammar::Parse("root ::= \"a\" root | \"b\"").ok());
}

TEST(GrammarParse, SizeLimitsHold) {
  GrammarLimits small;
  small.max_rules = 8;
  small.max_elements = 200;
  small.max_text_bytes = 1000;
  small.max_nesting = 4;
  small.max_repeat = 100;
  EXPECT_THAT(ParseError("root ::= \"a\"{101}", small), HasSubstr("exceeds 100"));
  EXPECT_THAT(ParseError("root ::= ((((((\"a\"))))))", small), HasSubstr("nested too deeply"));
  EXPECT_THAT(ParseError("root ::= a\na ::= b\nb ::= c\nc ::= d\nd ::= e\ne ::= f\nf ::= g\ng ::= h\nh ::= \"x\"", small),
              HasSubstr("more than 8 rules"));
  GrammarLimits few_elements;
  few_elements.max_elements = 200;
  EXPECT_THAT(ParseError("root ::= (\"a\"{0,100}){90}", few_elements), HasSubstr("elements"));
  EXPECT_THAT(ParseError(std::string(1001, ' ') + "root ::= \"a\"", small), HasSubstr("exceeds the limit"));
  // Defaults: nested bounded repetitions share rules, so stay small.
  auto g = Grammar::Parse("root ::= ((\"ab\"{0,1000}){0,1000}){0,1000}");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_LT((*g)->n_elements(), 40000u);
}

// ---- matcher ----------------------------------------------------------------------

TEST(GrammarMatch, Arithmetic) {
  auto g = ParseOrDie(kArithmetic);
  for (const char* s : {"1", "1+2*(3-4)", "((7))", "-3*-(2)", "12/4-0"}) EXPECT_TRUE(GrammarMatches(g, s)) << s;
  for (const char* s : {"", "1+", "(1", "1++2", "a", "1 + 2", "()"}) EXPECT_FALSE(GrammarMatches(g, s)) << s;
  EXPECT_TRUE(testing::IsGrammarPrefix(g, "(1+"));  // a valid prefix, not a sentence
}

TEST(GrammarMatch, Json) {
  auto g = ParseOrDie(kJson);
  for (const char* s : {"{}", R"({"a": [1, 2.5, "x\n\u00e9"], "b": {"c": null}})", "{\n  \"k\": true\n}",
                        R"({"é": -0.5e+3})"}) {
    EXPECT_TRUE(GrammarMatches(g, s)) << s;
  }
  for (const char* s : {R"({"a" 1})", "[1]", R"({"a": 01x})", R"({"a": "\q"})", "{\"a\": \"\x01\"}", "{"}) {
    EXPECT_FALSE(GrammarMatches(g, s)) << s;
  }
}

TEST(GrammarMatch, ListsAndRepetitionBounds) {
  auto g = ParseOrDie("root ::= item (\", \" item){1,2}\nitem ::= [a-z]+");
  EXPECT_FALSE(GrammarMatches(g, "a"));
  EXPECT_TRUE(GrammarMatches(g, "a, bc"));
  EXPECT_TRUE(GrammarMatches(g, "a, bc, d"));
  EXPECT_FALSE(GrammarMatches(g, "a, bc, d, e"));
  auto exact = ParseOrDie("root ::= \"ab\"{3}");
  EXPECT_TRUE(GrammarMatches(exact, "ababab"));
  EXPECT_FALSE(GrammarMatches(exact, "abab"));
  EXPECT_FALSE(GrammarMatches(exact, "abababab"));
  auto at_least = ParseOrDie("root ::= [0-9]{2,} \"!\"");
  EXPECT_FALSE(GrammarMatches(at_least, "1!"));
  EXPECT_TRUE(GrammarMatches(at_least, "12!"));
  EXPECT_TRUE(GrammarMatches(at_least, "1234567!"));
  auto opt = ParseOrDie("root ::= \"a\"? \"b\"* \"c\"+");
  for (const char* s : {"c", "ac", "abbc", "bccc"}) EXPECT_TRUE(GrammarMatches(opt, s)) << s;
  for (const char* s : {"", "a", "aac", "cb"}) EXPECT_FALSE(GrammarMatches(opt, s)) << s;
}

TEST(GrammarMatch, Utf8Classes) {
  auto greek = ParseOrDie("root ::= [α-ω]+ \"!\"");
  EXPECT_TRUE(GrammarMatches(greek, "αβγ!"));
  EXPECT_FALSE(GrammarMatches(greek, "abc!"));
  EXPECT_FALSE(GrammarMatches(greek, "Ωβ!"));  // capital omega is outside α-ω
  auto quoted = ParseOrDie("root ::= \"\\\"\" [^\"]* \"\\\"\"");
  EXPECT_TRUE(GrammarMatches(quoted, "\"héllo 😀\""));
  EXPECT_FALSE(GrammarMatches(quoted, "\"a\"b\""));
  auto any = ParseOrDie("root ::= . . \"x\"");
  EXPECT_TRUE(GrammarMatches(any, "é😀x"));
  EXPECT_FALSE(GrammarMatches(any, "éx"));
  // Malformed UTF-8 never matches, even under '.'.
  auto dots = ParseOrDie("root ::= .*");
  EXPECT_FALSE(GrammarMatches(dots, "\xC3"));           // truncated
  EXPECT_FALSE(GrammarMatches(dots, "\xC0\xAF"));       // overlong
  EXPECT_FALSE(GrammarMatches(dots, "\xED\xA0\x80"));   // surrogate
  // Bytes of one character may arrive in separate calls.
  GrammarMatcher m(greek);
  EXPECT_TRUE(m.AcceptBytes("\xCE"));
  EXPECT_FALSE(m.CanEnd());
  EXPECT_TRUE(m.AcceptBytes("\xB1!"));  // α!
  EXPECT_TRUE(m.CanEnd());
  // A partial character that can only complete outside the class is rejected
  // at its first byte: 0xE0 starts U+0800..U+0FFF, no Greek there.
  GrammarMatcher m2(greek);
  EXPECT_FALSE(m2.AcceptBytes("\xE0"));
}

// ---- GrammarConstraint ------------------------------------------------------------

std::vector<int32_t> Allowed(GrammarConstraint& c) {
  std::vector<uint8_t> mask;
  c.AllowedTokens(&mask);
  std::vector<int32_t> ids;
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i]) ids.push_back(static_cast<int32_t>(i));
  }
  return ids;
}

TEST(GrammarConstraint, MasksSplitCharactersAndEos) {
  // 0:"a" 1:"b" 2:"ab" 3:"\xC3" 4:"\xA9" (é split) 5:"ba" 6:"" (control) 7:EOS 8:"é" 9:"\xA9b"
  auto vocab = TokenPieces::Build({"a", "b", "ab", "\xC3", "\xA9", "ba", "", "</s>", "\xC3\xA9", "\xA9" "b"}, {7});
  auto g = ParseOrDie("root ::= \"a\" \"é\"* \"b\"");
  GrammarConstraint c(g, vocab);
  EXPECT_EQ(Allowed(c), (std::vector<int32_t>{0, 2}));
  c.Accept(0);
  EXPECT_EQ(Allowed(c), (std::vector<int32_t>{1, 3, 8}));
  c.Accept(3);  // half of é
  EXPECT_EQ(Allowed(c), (std::vector<int32_t>{4, 9}));
  auto fork = c.Clone();
  c.Accept(9);  // the other half, then b
  EXPECT_TRUE(c.CanEnd());
  EXPECT_EQ(Allowed(c), (std::vector<int32_t>{7}));
  std::vector<float> logits(10, 1.0f);
  c.Apply(logits);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(std::isinf(logits[i]), i != 7) << i;
  // The fork kept its own state.
  auto* f = static_cast<GrammarConstraint*>(fork.get());
  EXPECT_EQ(Allowed(*f), (std::vector<int32_t>{4, 9}));
  c.Reset();
  EXPECT_EQ(Allowed(c), (std::vector<int32_t>{0, 2}));
}

// The trie walk with its memo tables against the obvious definition: a token
// is allowed iff the text so far plus its bytes is still a grammar prefix.
TEST(GrammarConstraint, MaskEqualsTokenByTokenReference) {
  testing::StoriesSampler stories;
  ASSERT_TRUE(stories.ok());
  auto vocab = stories.pieces();
  auto g = ParseOrDie(kJson);
  std::mt19937 rng(7);
  for (int walk = 0; walk < 5; ++walk) {
    GrammarConstraint c(g, vocab);
    std::string text;
    for (int step = 0; step < 40; ++step) {
      std::vector<uint8_t> mask;
      c.AllowedTokens(&mask);
      std::vector<int32_t> ok_ids;
      for (int32_t id = 0; id < vocab->n_vocab(); ++id) {
        bool want;
        if (vocab->is_eog(id)) {
          want = GrammarMatches(g, text);
        } else {
          want = !vocab->piece(id).empty() && testing::IsGrammarPrefix(g, text + vocab->piece(id));
        }
        ASSERT_EQ(mask[id] != 0, want) << "walk " << walk << " step " << step << " text '" << text << "' token "
                                       << id << " '" << vocab->piece(id) << "'";
        if (want && !vocab->is_eog(id)) ok_ids.push_back(id);
      }
      if (ok_ids.empty()) break;
      const int32_t pick = ok_ids[rng() % ok_ids.size()];
      c.Accept(pick);
      text += vocab->piece(pick);
    }
  }
}

// ---- the issue's proof: samples from a real model -----------------------------------

struct GrammarCase {
  const char* name;
  const char* gbnf;
  const char* regex;  // independent check, for the regular ones
};

TEST(GrammarSampling, HundredHighTemperatureSamplesStayInTheGrammar) {
  testing::StoriesSampler stories;
  ASSERT_TRUE(stories.ok());
  const GrammarCase cases[] = {
      {"yes_no", "root ::= (\"yes\" | \"no\") \".\"", R"((yes|no)\.)"},
      {"word_list", "root ::= \"[\" word (\", \" word){0,3} \"]\"\nword ::= [a-z]{1,8}",
       R"(\[[a-z]{1,8}(, [a-z]{1,8}){0,3}\])"},
      {"arith", "root ::= num ([-+*] num){0,4}\nnum ::= [1-9] [0-9]{0,2}", R"([1-9][0-9]{0,2}([-+*][1-9][0-9]{0,2}){0,4})"},
      {"sentence", "root ::= [A-Z] [a-z ]{2,30} [.!?]", R"([A-Z][a-z ]{2,30}[.!?])"},
      {"nested_parens", "root ::= p\np ::= \"(\" p{0,2} \")\"", nullptr},
  };
  for (const GrammarCase& gc : cases) {
    SCOPED_TRACE(gc.name);
    auto g = ParseOrDie(gc.gbnf);
    ASSERT_NE(g, nullptr);
    SamplingConfig config;
    config.temperature = 1.5f;
    config.grammar = gc.gbnf;
    const auto outs = stories.Sample(config, 100, 128);
    ASSERT_EQ(outs.size(), 100u);
    int ended = 0, capped = 0;
    for (const auto& o : outs) {
      if (o.ended) {
        ++ended;
        EXPECT_TRUE(GrammarMatches(g, o.text)) << "'" << absl::CEscape(o.text) << "'";
        if (gc.regex != nullptr) {
          EXPECT_TRUE(std::regex_match(o.text, std::regex(gc.regex))) << "'" << absl::CEscape(o.text) << "'";
        }
      } else {
        ++capped;  // hit the length cap: still a valid prefix
        EXPECT_TRUE(testing::IsGrammarPrefix(g, o.text)) << "'" << absl::CEscape(o.text) << "'";
      }
    }
    std::printf("%-14s ended %3d / capped %3d   e.g. %s\n", gc.name, ended, capped, outs[0].text.c_str());
    EXPECT_GE(ended, 90);
  }
}

TEST(GrammarSampling, SamplerRejectsBadGrammarsAndBothFields) {
  SamplingConfig c;
  c.grammar = "root ::= (";
  EXPECT_EQ(ValidateSamplingConfig(c, 10).code(), absl::StatusCode::kInvalidArgument);
  c.grammar = "root ::= \"a\"";
  c.json_schema = "{}";
  EXPECT_THAT(ValidateSamplingConfig(c, 10).message(), HasSubstr("at most one"));
  c.json_schema.clear();
  EXPECT_TRUE(ValidateSamplingConfig(c, 10).ok());
  EXPECT_EQ(Sampler::Create(c, 10).status().code(), absl::StatusCode::kFailedPrecondition);  // no vocabulary
}

}  // namespace
}  // namespace llmesh::engine
