// JSON Schema → GBNF: unsupported keywords named, exact integer ranges,
// hand-checked accept/reject, and the issue's proof: 100 samples per schema
// from stories260K at temperature 1.5 all parse as JSON and validate.
#include <condition_variable>
#include <mutex>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grammar_test_util.h"
#include "gtest/gtest.h"
#include "llmesh/engine/grammar.h"
#include "llmesh/engine/scheduler.h"
#include "nlohmann/json.hpp"

namespace llmesh::engine {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

std::shared_ptr<const Grammar> SchemaGrammar(const std::string& schema) {
  auto text = JsonSchemaToGrammar(schema);
  EXPECT_TRUE(text.ok()) << text.status();
  if (!text.ok()) return nullptr;
  auto g = Grammar::Parse(*text);
  EXPECT_TRUE(g.ok()) << g.status() << "\n" << *text;
  return g.ok() ? *g : nullptr;
}

std::string SchemaError(const std::string& schema) {
  SamplingConfig c;
  c.json_schema = schema;
  absl::Status s = CompileSamplingGrammar(c).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << schema;
  return std::string(s.message());
}

// A validator for the supported subset, written from the spec, independent of
// the compiler.
bool Validate(const Json& v, const Json& s, const Json& root, std::string* why) {
  auto fail = [&](const std::string& m) {
    *why = m + " at " + v.dump();
    return false;
  };
  if (s.is_boolean()) return s.get<bool>() || fail("false schema");
  if (s.contains("$ref")) {
    const std::string r = s["$ref"];
    const std::string name = r.substr(r.rfind('/') + 1);
    return Validate(v, root.contains("$defs") ? root["$defs"][name] : root["definitions"][name], root, why);
  }
  if (s.contains("const") && v != s["const"]) return fail("const");
  if (s.contains("enum")) {
    bool found = false;
    for (const Json& e : s["enum"]) found = found || e == v;
    if (!found) return fail("enum");
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key)) continue;
    int n = 0;
    std::string sub;
    for (const Json& b : s[key]) n += Validate(v, b, root, &sub);
    if (n == 0 || (std::string(key) == "oneOf" && n != 1)) return fail(key);
  }
  if (s.contains("type")) {
    const std::string t = s["type"];
    const bool ok = (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
                    (t == "string" && v.is_string()) || (t == "integer" && v.is_number_integer()) ||
                    (t == "number" && v.is_number()) || (t == "boolean" && v.is_boolean()) ||
                    (t == "null" && v.is_null());
    if (!ok) return fail("type " + t);
  }
  if (v.is_object() && s.contains("properties")) {
    for (const auto& [k, sub] : v.items()) {
      if (s["properties"].contains(k)) {
        if (!Validate(sub, s["properties"][k], root, why)) return false;
      } else if (s.contains("additionalProperties") && s["additionalProperties"] == false) {
        return fail("additional property " + k);
      }
    }
    if (s.contains("required")) {
      for (const Json& r : s["required"]) {
        if (!v.contains(r.get<std::string>())) return fail("missing " + r.get<std::string>());
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return fail("minItems");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return fail("maxItems");
    if (s.contains("items")) {
      for (const Json& e : v) {
        if (!Validate(e, s["items"], root, why)) return false;
      }
    }
  }
  if (v.is_string()) {
    const std::string str = v;
    // Length in code points.
    size_t n = 0;
    for (unsigned char c : str) n += (c & 0xC0) != 0x80;
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return fail("minLength");
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return fail("maxLength");
    if (s.contains("pattern") && !std::regex_search(str, std::regex(s["pattern"].get<std::string>()))) return fail("pattern");
  }
  if (v.is_number_integer()) {
    const int64_t x = v;
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return fail("minimum");
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return fail("maximum");
  }
  return true;
}

// ---- compiler errors ---------------------------------------------------------------

TEST(JsonSchema, UnsupportedKeywordsAreNamed) {
  EXPECT_THAT(SchemaError(R"({"type": "string", "format": "email"})"), HasSubstr("unsupported keyword 'format'"));
  EXPECT_THAT(SchemaError(R"({"type": "object", "properties": {"a": {"minProperties": 1}}})"),
              HasSubstr("at root-a: unsupported keyword 'minProperties'"));
  EXPECT_THAT(SchemaError(R"({"patternProperties": {}})"), HasSubstr("'patternProperties'"));
  EXPECT_THAT(SchemaError(R"({"$ref": "http://x/y"})"), HasSubstr("not supported"));
  EXPECT_THAT(SchemaError(R"({"$ref": "#/$defs/missing"})"), HasSubstr("does not resolve"));
  EXPECT_THAT(SchemaError(R"({"type": "number", "minimum": 1})"), HasSubstr("use type integer"));
  EXPECT_THAT(SchemaError(R"({"type": "string", "pattern": "^(?=a)b$"})"), HasSubstr("lookaround"));
  EXPECT_THAT(SchemaError(R"({"type": "string", "pattern": "^a\\1$"})"), HasSubstr("escape '\\1'"));
  EXPECT_THAT(SchemaError(R"({"type": "object", "properties": {}, "required": ["x"]})"),
              HasSubstr("required property 'x' is not in properties"));
  EXPECT_THAT(SchemaError(R"({"type": "integer", "minimum": 5, "maximum": 4})"), HasSubstr("empty"));
  EXPECT_THAT(SchemaError(R"({"type": "array", "items": [{}]})"), HasSubstr("tuple"));
  EXPECT_THAT(SchemaError(R"({"type": "string", "maxLength": 100000})"), HasSubstr("maxLength above"));
  EXPECT_THAT(SchemaError(R"({"type": "wat"})"), HasSubstr("unknown type 'wat'"));
  EXPECT_THAT(SchemaError("{not json"), HasSubstr("not valid JSON"));
  EXPECT_THAT(SchemaError(R"({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}})"), HasSubstr("left recursion"));
  EXPECT_THAT(SchemaError(R"({"allOf": [{}, {}]})"), HasSubstr("allOf"));
}

// Hostile schemas under the 256 KB size limit, as a gRPC client can send
// them: 100,000 levels in a const value (the parse built them, then the
// dump of the value recursed once per level: past the stack) and 20,000
// keys in one object (ordered_json's quadratic insert: 1.8 s). Both are
// answered at once now.
TEST(JsonSchema, DeepAndWideSchemasAreAnsweredAtOnce) {
  std::string deep = R"({"const": )";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}";
  std::string wide = R"({"type": "integer", "examples": [{)";
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&wide, i ? "," : "", "\"k", i, "\":0");
  wide += "}]}";
  ASSERT_LT(wide.size(), GrammarLimits().max_text_bytes);
  absl::Time start = absl::Now();
  EXPECT_THAT(SchemaError(deep), HasSubstr("nested deeper than 128 levels"));
  EXPECT_TRUE(JsonSchemaToGrammar(wide).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

// ---- compiled grammars ---------------------------------------------------------------

TEST(JsonSchema, AnyOfObjectsAtTheRootKeepTheirRulesApart) {
  // Each branch is a rule named root-<i>; the anyOf's own rule, renamed from
  // "root", once took "root-1" too and referred to itself.
  auto g = SchemaGrammar(R"({"anyOf": [
      {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false},
      {"type": "object", "properties": {"b": {"type": "boolean"}}, "required": ["b"], "additionalProperties": false}]})");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(GrammarMatches(g, R"({"a": 1})"));
  EXPECT_TRUE(GrammarMatches(g, R"({"b":true})"));
  EXPECT_FALSE(GrammarMatches(g, R"({"a":true})"));
}

TEST(JsonSchema, IntegerRangesAreExact) {
  const std::pair<int64_t, int64_t> ranges[] = {{-15, 237}, {0, 9}, {7, 7}, {100, 1000}, {-999, -10}, {19, 1201}};
  for (const auto& [lo, hi] : ranges) {
    auto g = SchemaGrammar(absl::StrCat(R"({"type": "integer", "minimum": )", lo, R"(, "maximum": )", hi, "}"));
    ASSERT_NE(g, nullptr);
    for (int64_t x = -1500; x <= 1500; ++x) {
      ASSERT_EQ(GrammarMatches(g, std::to_string(x)), lo <= x && x <= hi) << x << " in [" << lo << ", " << hi << "]";
    }
    EXPECT_FALSE(GrammarMatches(g, "-0"));
    EXPECT_FALSE(GrammarMatches(g, "007"));
  }
  auto half = SchemaGrammar(R"({"type": "integer", "exclusiveMinimum": 3})");
  EXPECT_FALSE(GrammarMatches(half, "3"));
  EXPECT_TRUE(GrammarMatches(half, "4"));
  EXPECT_TRUE(GrammarMatches(half, "123456789012"));
}

TEST(JsonSchema, ObjectsKeepOrderAndMayOmitOptionalProperties) {
  auto g = SchemaGrammar(R"({"type": "object", "properties": {
      "a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
      "required": ["b"], "additionalProperties": false})");
  for (const char* s : {R"({"b":"x"})", R"({"a":1,"b":"x"})", R"({"a": 1, "b": "x", "c": true})", R"({"b":"","c":false})"}) {
    EXPECT_TRUE(GrammarMatches(g, s)) << s;
  }
  for (const char* s : {"{}", R"({"a":1})", R"({"b":"x","a":1})", R"({"b":"x",})", R"({,"b":"x"})", R"({"b":"x","d":1})"}) {
    EXPECT_FALSE(GrammarMatches(g, s)) << s;
  }
}

TEST(JsonSchema, StringsArraysEnumsRefs) {
  auto s = SchemaGrammar(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  EXPECT_FALSE(GrammarMatches(s, R"("a")"));
  EXPECT_TRUE(GrammarMatches(s, R"("ab")"));
  EXPECT_TRUE(GrammarMatches(s, R"("a\nb")"));  // an escape is one character
  EXPECT_TRUE(GrammarMatches(s, R"("éé")"));
  EXPECT_FALSE(GrammarMatches(s, R"("abcd")"));
  auto p = SchemaGrammar(R"({"type": "string", "pattern": "^[A-Z][a-z]+-\\d{2,3}$"})");
  EXPECT_TRUE(GrammarMatches(p, R"("Abc-12")"));
  EXPECT_FALSE(GrammarMatches(p, R"("abc-12")"));
  EXPECT_FALSE(GrammarMatches(p, R"("Abc-1234")"));
  auto a = SchemaGrammar(R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3})");
  EXPECT_FALSE(GrammarMatches(a, "[]"));
  EXPECT_TRUE(GrammarMatches(a, "[1, -2,3]"));
  EXPECT_FALSE(GrammarMatches(a, "[1,2,3,4]"));
  auto e = SchemaGrammar(R"({"enum": ["red", 3, null, {"k": [1]}]})");
  for (const char* x : {R"("red")", "3", "null", R"({"k":[1]})"}) EXPECT_TRUE(GrammarMatches(e, x)) << x;
  EXPECT_FALSE(GrammarMatches(e, R"("blue")"));
  auto r = SchemaGrammar(R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
      "properties": {"v": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
      "required": ["v", "next"]}}})");
  EXPECT_TRUE(GrammarMatches(r, R"({"v":1,"next":{"v":2,"next":null}})"));
  EXPECT_FALSE(GrammarMatches(r, R"({"v":1,"next":{"v":2}})"));
  auto any = SchemaGrammar("{}");
  EXPECT_TRUE(GrammarMatches(any, R"([{"x": [true, null, 1.5e3]}, "s"])"));
}

// ---- the issue's proof: samples from a real model -------------------------------------

TEST(JsonSchemaSampling, HundredHighTemperatureSamplesParseAndValidate) {
  testing::StoriesSampler stories;
  ASSERT_TRUE(stories.ok());
  const char* schemas[] = {
      // A tool call.
      R"({"type": "object", "properties": {
          "name": {"enum": ["get_weather", "search", "send_email"]},
          "arguments": {"type": "object", "properties": {
              "city": {"type": "string", "maxLength": 12},
              "days": {"type": "integer", "minimum": 1, "maximum": 14}},
            "required": ["city"], "additionalProperties": false}},
        "required": ["name", "arguments"], "additionalProperties": false})",
      // Bounded integers.
      R"({"type": "array", "items": {"type": "integer", "minimum": -50, "maximum": 300},
          "minItems": 1, "maxItems": 6})",
      // Nested objects with optional fields, a $ref and a pattern.
      R"({"type": "object", "$defs": {"person": {"type": "object", "properties": {
              "name": {"type": "string", "minLength": 1, "maxLength": 10},
              "age": {"type": "integer", "minimum": 0, "maximum": 120},
              "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 2}},
            "required": ["name"], "additionalProperties": false}},
        "properties": {
          "owner": {"$ref": "#/$defs/person"},
          "pet": {"anyOf": [{"$ref": "#/$defs/person"}, {"type": "null"}]},
          "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{1,3}$"},
          "ok": {"type": "boolean"}},
        "required": ["owner", "ok"], "additionalProperties": false})",
      // Scalars.
      R"({"anyOf": [{"type": "boolean"}, {"type": "null"}, {"const": "done"}, {"type": "integer", "maximum": 99}]})",
  };
  for (const char* schema_text : schemas) {
    SCOPED_TRACE(schema_text);
    const Json schema = Json::parse(schema_text);
    auto g = SchemaGrammar(schema_text);
    ASSERT_NE(g, nullptr);
    SamplingConfig config;
    config.temperature = 1.5f;
    config.json_schema = schema_text;
    const auto outs = stories.Sample(config, 100, 128);
    ASSERT_EQ(outs.size(), 100u);
    int valid = 0, capped = 0;
    for (const auto& o : outs) {
      if (!o.ended) {
        ++capped;
        EXPECT_TRUE(testing::IsGrammarPrefix(g, o.text)) << o.text;
        continue;
      }
      const Json v = Json::parse(o.text, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(v.is_discarded()) << "not JSON: " << o.text;
      std::string why;
      EXPECT_TRUE(Validate(v, schema, schema, &why)) << why << "\n" << o.text;
      valid += why.empty();
    }
    std::printf("schema: valid %3d / capped %3d   e.g. %s\n", valid, capped, outs[0].text.c_str());
    EXPECT_GE(valid, 90);
  }
}

// Through the scheduler: constrained and unconstrained requests share the
// continuous batch; each constrained completion (n = 2 forks too) is valid.
class CollectSink : public GenerationSink {
 public:
  void OnToken(int32_t index, const SampleResult& t) override {
    std::lock_guard lock(mu_);
    tokens_[index].push_back(t.token);
  }
  void OnFinish(int32_t index, FinishReason reason, const GenerationUsage&, const std::string& error) override {
    std::lock_guard lock(mu_);
    reasons_[index] = reason;
    errors_[index] = error;
    cv_.notify_all();
  }
  void Wait(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return reasons_.size() == n; });
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int32_t, std::vector<int32_t>> tokens_;
  std::map<int32_t, FinishReason> reasons_;
  std::map<int32_t, std::string> errors_;
};

TEST(JsonSchemaSampling, SchedulerBatchesConstrainedWithUnconstrained) {
  testing::StoriesSampler stories;
  ASSERT_TRUE(stories.ok());
  SchedulerConfig sc;
  sc.max_seqs = 16;
  auto sched = Scheduler::Create(stories.model(), stories.pool(), sc);
  ASSERT_TRUE(sched.ok()) << sched.status();
  const char* schema_text = R"({"type": "object", "properties": {
      "name": {"enum": ["get_weather", "search"]},
      "arguments": {"type": "object", "properties": {"q": {"type": "string", "maxLength": 10}},
                    "required": ["q"], "additionalProperties": false}},
      "required": ["name", "arguments"], "additionalProperties": false})";
  const Json schema = Json::parse(schema_text);
  std::vector<std::shared_ptr<CollectSink>> constrained, free;
  for (int i = 0; i < 12; ++i) {
    GenerationRequest req;
    req.prompt = {stories.tokenizer().bos_id()};
    req.max_tokens = 96;
    req.sampling.temperature = 1.5f;
    req.sampling.seed = static_cast<uint64_t>(i);
    const bool constrain = i % 2 == 0;
    if (constrain) {
      req.sampling.json_schema = schema_text;
      req.n = 2;
    }
    auto sink = std::make_shared<CollectSink>();
    ASSERT_TRUE((*sched)->Submit(std::move(req), sink).ok());
    (constrain ? constrained : free).push_back(sink);
  }
  // A malformed schema is refused at Submit, and the scheduler carries on.
  GenerationRequest bad;
  bad.prompt = {stories.tokenizer().bos_id()};
  bad.sampling.json_schema = R"({"type": "string", "format": "uri"})";
  auto st = (*sched)->Submit(std::move(bad), std::make_shared<CollectSink>());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.status().message(), HasSubstr("'format'"));
  for (auto& s : free) s->Wait(1);
  int valid = 0;
  for (auto& s : constrained) {
    s->Wait(2);
    for (int index = 0; index < 2; ++index) {
      std::string text;
      for (int32_t t : s->tokens_[index]) {
        if (!stories.tokenizer().is_eog(t)) text += stories.pieces()->piece(t);
      }
      ASSERT_EQ(s->reasons_[index], FinishReason::kStop) << text;
      const Json v = Json::parse(text, nullptr, false);
      ASSERT_FALSE(v.is_discarded()) << text;
      std::string why;
      EXPECT_TRUE(Validate(v, schema, schema, &why)) << why;
      ++valid;
    }
  }
  EXPECT_EQ(valid, 12);
}

}  // namespace
}  // namespace llmesh::engine
