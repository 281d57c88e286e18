// Constrained output end to end, over processes on 127.0.0.1 with
// stories260K (tokenizer, one self-registered engine, the gateway): gRPC
// Generate with a json_schema, OpenAI response_format and tools. The model is
// tiny and sampled hot, so it writes nonsense; what is tested is that every
// output parses and validates against its schema (with a validator written
// here, independent of the engine's schema compiler) and that calls come back
// the OpenAI way.
#include <gtest/gtest.h>

#include "gateway_stack.h"
#include "nlohmann/json.hpp"

namespace llmesh::testing {
namespace {

using json = nlohmann::json;
using namespace llmesh::v1;

// The keywords the schemas below use: type, properties, required,
// additionalProperties: false, enum, minimum/maximum, minLength/maxLength,
// items, minItems/maxItems. Returns "" when `v` is valid, else why not.
std::string Invalid(const json& v, const json& s, const std::string& at = "$") {
  if (s.contains("enum")) {
    for (const auto& e : s["enum"])
      if (e == v) return "";
    return at + ": not in enum";
  }
  const std::string type = s.value("type", "");
  if (type == "object") {
    if (!v.is_object()) return at + ": not an object";
    for (const auto& r : s.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) return at + ": missing " + r.get<std::string>();
    const json props = s.value("properties", json::object());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!props.contains(it.key())) {
        if (s.value("additionalProperties", true) == false) return at + ": extra property " + it.key();
        continue;
      }
      if (auto why = Invalid(*it, props[it.key()], at + "." + it.key()); !why.empty()) return why;
    }
  } else if (type == "array") {
    if (!v.is_array()) return at + ": not an array";
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return at + ": too few items";
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return at + ": too many items";
    for (size_t i = 0; i < v.size(); ++i)
      if (auto why = Invalid(v[i], s.value("items", json::object()), at + "[" + std::to_string(i) + "]"); !why.empty())
        return why;
  } else if (type == "string") {
    if (!v.is_string()) return at + ": not a string";
    // Lengths in code points.
    size_t n = 0;
    for (unsigned char c : v.get<std::string>()) n += (c & 0xC0) != 0x80;
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return at + ": too short";
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return at + ": too long";
  } else if (type == "integer" || type == "number") {
    if (type == "integer" ? !v.is_number_integer() : !v.is_number()) return at + ": not a " + type;
    if (s.contains("minimum") && v.get<double>() < s["minimum"].get<double>()) return at + ": below minimum";
    if (s.contains("maximum") && v.get<double>() > s["maximum"].get<double>()) return at + ": above maximum";
  } else if (type == "boolean") {
    if (!v.is_boolean()) return at + ": not a boolean";
  } else if (type == "null") {
    if (!v.is_null()) return at + ": not null";
  }
  return "";
}

const char kPerson[] = R"({"type":"object","properties":{
    "name":{"type":"string","minLength":1,"maxLength":12},
    "age":{"type":"integer","minimum":0,"maximum":120},
    "pets":{"type":"array","items":{"enum":["cat","dog","fish"]},"maxItems":3},
    "alive":{"type":"boolean"},
    "note":{"type":"string","maxLength":8}},
  "required":["name","age","pets","alive"],"additionalProperties":false})";

const char kWeather[] = R"({"type":"object","properties":{
    "city":{"type":"string","minLength":1,"maxLength":10},
    "days":{"type":"integer","minimum":1,"maximum":7}},
  "required":["city","days"],"additionalProperties":false})";

class ConstrainedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new GatewayStack();
    ASSERT_TRUE(stack_->Start({}).ok());
    ASSERT_TRUE(stack_->AddEngine().ok());
    ASSERT_TRUE(stack_->WaitForWorkers(1).ok());
    ASSERT_TRUE(WaitForServing(stack_->tokenizer.address(), absl::Seconds(30)).ok());
  }
  static void TearDownTestSuite() { delete stack_; }

  static httplib::Client Http() {
    httplib::Client c("127.0.0.1", stack_->http_port);
    c.set_read_timeout(120, 0);
    return c;
  }
  static std::vector<json> Events(const std::string& body) {
    std::vector<json> out;
    for (const std::string& payload : SseData(body)) out.push_back(json::parse(payload));
    return out;
  }

  static inline GatewayStack* stack_ = nullptr;
};

TEST_F(ConstrainedTest, GrpcGenerateWithAJsonSchemaAlwaysValidates) {
  const json schema = json::parse(kPerson);
  int samples = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    GatewayGenerateRequest req;
    req.set_model("stories260K");
    req.set_prompt("Once upon a time");
    req.set_n(4);  // four sequences, each its own copy of the constraint
    req.mutable_sampling()->set_temperature(1.5f);
    req.mutable_sampling()->set_seed(seed);
    req.mutable_sampling()->set_json_schema(kPerson);
    req.mutable_stopping()->set_max_tokens(400);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto reader = stack_->stub->Generate(&ctx, req);
    std::vector<std::string> text(4);
    std::vector<FinishReason> finish(4, FINISH_REASON_UNSPECIFIED);
    GatewayGenerateResponse r;
    while (reader->Read(&r)) {
      ASSERT_LT(r.index(), 4);
      text[r.index()] += r.text_delta();
      if (r.finish_reason() != FINISH_REASON_UNSPECIFIED) finish[r.index()] = r.finish_reason();
    }
    grpc::Status st = reader->Finish();
    ASSERT_TRUE(st.ok()) << st.error_message();
    for (int i = 0; i < 4; ++i) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " completion " + std::to_string(i) + ": " + text[i]);
      EXPECT_EQ(finish[i], FINISH_REASON_STOP);  // the grammar ended it, not max_tokens
      json v = json::parse(text[i], nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(v.is_discarded());
      EXPECT_EQ(Invalid(v, schema), "");
      ++samples;
    }
  }
  EXPECT_EQ(samples, 16);
}

TEST_F(ConstrainedTest, ABadSchemaIsRefusedWithTheReason) {
  GatewayGenerateRequest req;
  req.set_model("stories260K");
  req.set_prompt("Once");
  req.mutable_sampling()->set_json_schema(R"({"type":"object","patternProperties":{}})");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stack_->stub->Generate(&ctx, req);
  GatewayGenerateResponse r;
  while (reader->Read(&r)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("patternProperties"), std::string::npos) << st.error_message();

  auto http = Http().Post("/v1/chat/completions",
                          json({{"messages", {{{"role", "user"}, {"content", "x"}}}},
                                {"response_format", {{"type", "json_schema"},
                                                     {"json_schema", {{"name", "x"}, {"schema", {{"type", "frob"}}}}}}}})
                              .dump(),
                          "application/json");
  ASSERT_TRUE(http);
  EXPECT_EQ(http->status, 400);
  EXPECT_EQ(json::parse(http->body)["error"]["param"], "response_format");
}

TEST_F(ConstrainedTest, ResponseFormatJsonSchemaOverHttp) {
  const json schema = json::parse(kPerson);
  for (int seed = 1; seed <= 3; ++seed) {
    json body = {{"model", "stories260K"},
                 {"messages", {{{"role", "user"}, {"content", "Describe a person."}}}},
                 {"temperature", 1.5},
                 {"seed", seed},
                 {"max_tokens", 400},
                 {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "person"}, {"schema", schema}}}}}};
    auto r = Http().Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    json j = json::parse(r->body);
    std::string content = j["choices"][0]["message"]["content"];
    SCOPED_TRACE(content);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    json v = json::parse(content, nullptr, false);
    ASSERT_FALSE(v.is_discarded());
    EXPECT_EQ(Invalid(v, schema), "");
  }
  // json_object: any object.
  json body = {{"messages", {{{"role", "user"}, {"content", "JSON please"}}}},
               {"temperature", 1.0},
               {"seed", 3},
               {"max_tokens", 300},
               {"response_format", {{"type", "json_object"}}}};
  auto r = Http().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  if (j["choices"][0]["finish_reason"] == "stop") {  // an open object may run to max_tokens
    json v = json::parse(j["choices"][0]["message"]["content"].get<std::string>(), nullptr, false);
    EXPECT_TRUE(v.is_object()) << j.dump();
  }
}

json Tools() {
  return json::array({{{"type", "function"},
                       {"function", {{"name", "get_weather"},
                                     {"description", "Weather forecast for a city"},
                                     {"parameters", json::parse(kWeather)}}}},
                      {{"type", "function"}, {"function", {{"name", "now"}, {"description", "The time"}}}}});
}

TEST_F(ConstrainedTest, ToolChoiceRequiredGivesSchemaValidCalls) {
  const json params = json::parse(kWeather);
  for (int seed = 1; seed <= 4; ++seed) {
    json body = {{"model", "stories260K"},
                 {"messages", {{{"role", "user"}, {"content", "Weather in Paris for 3 days?"}}}},
                 {"temperature", 1.5},
                 {"seed", seed},
                 {"max_tokens", 300},
                 {"tools", Tools()},
                 {"tool_choice", "required"}};
    auto r = Http().Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    json j = json::parse(r->body);
    SCOPED_TRACE(j.dump());
    const json& choice = j["choices"][0];
    ASSERT_EQ(choice["finish_reason"], "tool_calls");
    EXPECT_TRUE(choice["message"]["content"].is_null());
    ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
    const json& call = choice["message"]["tool_calls"][0];
    EXPECT_EQ(call["type"], "function");
    EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
    json args = json::parse(call["function"]["arguments"].get<std::string>(), nullptr, false);
    ASSERT_FALSE(args.is_discarded());
    if (call["function"]["name"] == "get_weather") {
      EXPECT_EQ(Invalid(args, params), "");
    } else {
      EXPECT_EQ(call["function"]["name"], "now");
      EXPECT_EQ(args, json::object());
    }
  }
}

TEST_F(ConstrainedTest, AForcedToolStreamsItsCallInDeltas) {
  json body = {{"model", "stories260K"},
               {"messages", {{{"role", "user"}, {"content", "Weather?"}}}},
               {"temperature", 1.2},
               {"seed", 11},
               {"max_tokens", 300},
               {"stream", true},
               {"tools", Tools()},
               {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}};
  auto r = Http().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::string name, arguments, finish;
  for (const json& e : Events(r->body)) {
    for (const json& c : e["choices"]) {
      const json& delta = c["delta"];
      if (delta.contains("content") && delta["content"].is_string()) {
        EXPECT_EQ(delta["content"], "") << e.dump();
      }
      if (delta.contains("tool_calls"))
        for (const json& tc : delta["tool_calls"]) {
          if (tc["function"].contains("name")) name += tc["function"]["name"].get<std::string>();
          arguments += tc["function"]["arguments"].get<std::string>();
        }
      if (c["finish_reason"].is_string()) finish = c["finish_reason"];
    }
  }
  EXPECT_EQ(finish, "tool_calls") << r->body;
  EXPECT_EQ(name, "get_weather");
  json args = json::parse(arguments, nullptr, false);
  ASSERT_FALSE(args.is_discarded()) << arguments;
  EXPECT_EQ(Invalid(args, json::parse(kWeather)), "");
}

TEST_F(ConstrainedTest, AutoGivesTextOrAValidCall) {
  for (int seed = 1; seed <= 4; ++seed) {
    json body = {{"model", "stories260K"},
                 {"messages", {{{"role", "user"}, {"content", "Hello"}}}},
                 {"temperature", 1.0},
                 {"seed", seed},
                 {"max_tokens", 48},
                 {"tools", Tools()}};
    auto r = Http().Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    json j = json::parse(r->body);
    const json& msg = j["choices"][0]["message"];
    if (msg.contains("tool_calls")) {
      EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
      EXPECT_TRUE(json::accept(msg["tool_calls"][0]["function"]["arguments"].get<std::string>()));
    } else {
      // Text: it may not start with "{" (that would have been a call).
      std::string content = msg["content"];
      EXPECT_TRUE(content.empty() || content[0] != '{') << content;
    }
  }
}

TEST_F(ConstrainedTest, BadToolsAre400s) {
  json body = {{"messages", {{{"role", "user"}, {"content", "x"}}}},
               {"tools", json::array({{{"type", "function"},
                                       {"function", {{"name", "f"}, {"parameters", {{"type", "string"}, {"format", "email"}}}}}}})}};
  auto r = Http().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  json e = json::parse(r->body)["error"];
  EXPECT_EQ(e["param"], "tools");
  EXPECT_NE(e["message"].get<std::string>().find("format"), std::string::npos) << e.dump();
  // And the next valid request still succeeds.
  json ok = {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"max_tokens", 4}};
  auto next = Http().Post("/v1/chat/completions", ok.dump(), "application/json");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST_F(ConstrainedTest, GrpcChatWithToolsReturnsToolCalls) {
  ChatRequest req;
  req.set_model("stories260K");
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("Weather in Oslo?");
  auto* t = req.add_tools();
  t->set_name("get_weather");
  t->set_parameters_json_schema(kWeather);
  req.set_tool_choice("required");
  req.mutable_sampling()->set_temperature(1.3f);
  req.mutable_sampling()->set_seed(5);
  req.mutable_stopping()->set_max_tokens(300);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto reader = stack_->stub->Chat(&ctx, req);
  GatewayGenerateResponse r, last;
  std::string text;
  while (reader->Read(&r)) {
    text += r.text_delta();
    if (r.finish_reason() != FINISH_REASON_UNSPECIFIED) last = r;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(text, "");  // the call's text is not sent as text
  ASSERT_EQ(last.finish_reason(), FINISH_REASON_TOOL_CALLS) << last.DebugString();
  ASSERT_EQ(last.tool_calls_size(), 1);
  EXPECT_EQ(last.tool_calls(0).name(), "get_weather");
  EXPECT_FALSE(last.tool_calls(0).id().empty());
  EXPECT_GT(last.tokens_size(), 0);  // its tokens come with it
  json args = json::parse(last.tool_calls(0).arguments_json(), nullptr, false);
  ASSERT_FALSE(args.is_discarded());
  EXPECT_EQ(Invalid(args, json::parse(kWeather)), "");
}

}  // namespace
}  // namespace llmesh::testing
