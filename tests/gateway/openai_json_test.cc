#include "llmesh/gateway/openai_json.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace llmesh::gateway {
namespace {

using json = nlohmann::json;

absl::Status ChatError(const std::string& body, std::string* param = nullptr) {
  std::string p;
  auto r = ParseChatCompletionRequest(body, "dflt", param ? param : &p);
  return r.status();
}

TEST(OpenAiJsonTest, ChatRequestMapsEveryField) {
  std::string param;
  auto r = ParseChatCompletionRequest(R"({
    "model": "stories260K", "messages": [{"role": "system", "content": "be brief"},
                                          {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    "max_tokens": 12, "temperature": 0.5, "top_p": 0.9, "n": 2, "seed": 42, "stop": ["\n\n", "END"],
    "presence_penalty": 0.1, "frequency_penalty": -0.2, "logit_bias": {"13": -100},
    "logprobs": true, "top_logprobs": 3, "user": "u1", "stream": true, "stream_options": {"include_usage": true},
    "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1, "some_future_field": {"x": 1}
  })",
                                      "dflt", &param);
  ASSERT_TRUE(r.ok()) << r.status();
  const GenerateJob& j = r->job;
  EXPECT_TRUE(r->chat);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(j.model, "stories260K");
  ASSERT_EQ(j.messages.size(), 2u);
  EXPECT_EQ(j.messages[1].content(), "hi");
  EXPECT_EQ(j.stopping.max_tokens(), 12);
  EXPECT_FLOAT_EQ(j.sampling.temperature(), 0.5f);
  EXPECT_EQ(j.sampling.seed(), 42u);
  EXPECT_EQ(j.sampling.top_k(), 40);
  EXPECT_EQ(j.sampling.logit_bias().at(13), -100.0f);
  EXPECT_EQ(j.n, 2);
  ASSERT_EQ(j.stopping.stop_size(), 2);
  EXPECT_TRUE(j.logprobs);
  EXPECT_EQ(j.top_logprobs, 3);
  EXPECT_EQ(j.user, "u1");
}

TEST(OpenAiJsonTest, DefaultsAndDefaultModel) {
  std::string param;
  auto r = ParseChatCompletionRequest(R"({"messages": [{"role": "user", "content": "x"}]})", "dflt", &param);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->job.model, "dflt");
  EXPECT_FALSE(r->stream);
  EXPECT_EQ(r->job.n, 1);
  EXPECT_FALSE(r->job.sampling.has_temperature());
  auto c = ParseCompletionRequest(R"({"prompt": "x"})", "dflt", &param);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->job.stopping.max_tokens(), 16);  // OpenAI's default for completions
}

TEST(OpenAiJsonTest, WrongTypesAndRangesAreRejectedNamingTheField) {
  std::string param;
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("not json")));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("[1,2]")));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError(R"({"messages": "hi"})", &param)));
  EXPECT_EQ(param, "messages");
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError(R"({"messages": []})", &param)));
  const std::string m = R"("messages": [{"role": "user", "content": "x"}])";
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "temperature": "hot"})", &param)));
  EXPECT_EQ(param, "temperature");
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "temperature": NaN})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "temperature": 1e999})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "max_tokens": -5})", &param)));
  EXPECT_EQ(param, "max_tokens");
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "max_tokens": 0})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "max_tokens": 99999999999999})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "max_tokens": 1.5})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "max_tokens": "10"})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "n": 17})", &param)));
  EXPECT_EQ(param, "n");
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "stop": 5})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "stream": "yes"})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "logit_bias": {"abc": 1}})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "top_logprobs": 3})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError(R"({"messages": [{"content": "x"}]})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError(R"({"messages": [{"role": "user", "content": 5}]})", &param)));
  EXPECT_TRUE(absl::IsInvalidArgument(ChatError("{" + m + R"(, "model": 7})", &param)));
  EXPECT_EQ(param, "model");
}

std::string Nest(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += R"({"a":)";
  s += "1";
  return s + std::string(depth, '}');
}

// The issue's bodies: an ignored field nested 32,000 levels (384 KB), a
// response_format schema nested 50,000 levels (3 MB), and 100,000 keys in an
// ignored object (ordered_json's insert is quadratic: minutes). Before, the
// body was parsed twice with nothing bounded (0.65 s at 4K levels, 3.3 s at
// 8K, past 30 s here); now each is answered from the first parse.
TEST(OpenAiJsonTest, DeepOrWideBodiesAreRefusedOrParsedInLinearTime) {
  const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
  absl::Time start = absl::Now();
  std::string param = "x";
  absl::Status st = ChatError(absl::StrCat("{", msgs, R"(, "ignored": )", Nest(32000), "}"), &param);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("nested deeper than 128 levels"), std::string::npos) << st;
  EXPECT_EQ(param, "");
  std::string schema = Nest(50000);
  st = ChatError(absl::StrCat("{", msgs, R"(, "response_format": {"type": "json_schema", "json_schema": )",
                              R"({"name": "n", "schema": )", schema, "}}}"));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("nested deeper than 128 levels"), std::string::npos) << st;
  std::string wide = "{";
  for (int i = 0; i < 100000; ++i) absl::StrAppend(&wide, i ? "," : "", "\"k", i, "\":0");
  wide += "}";
  EXPECT_TRUE(ChatError(absl::StrCat("{", msgs, R"(, "ignored": )", wide, "}")).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // 128 levels is allowed, and so is an assistant's tool call whose
  // arguments are deep JSON text (kept as the text it is).
  EXPECT_TRUE(ChatError(absl::StrCat("{", msgs, R"(, "ignored": )", Nest(127), "}")).ok());
  json call = {{"type", "function"}, {"function", {{"name", "f"}, {"arguments", Nest(5000)}}}};
  json body = {{"messages", {{{"role", "assistant"}, {"tool_calls", {call}}}, {{"role", "user"}, {"content", "x"}}}}};
  auto r = ParseChatCompletionRequest(body.dump(), "dflt", &param);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->job.messages[0].content().find(R"("arguments":"{\"a\":)"), std::string::npos);
}

TEST(OpenAiJsonTest, CompletionPromptForms) {
  std::string param;
  auto ids = ParseCompletionRequest(R"({"prompt": [1, 403, 407]})", "m", &param);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->job.input, GenerateJob::Input::kTokenIds);
  EXPECT_EQ(ids->job.prompt_ids, (std::vector<int32_t>{1, 403, 407}));
  auto nested = ParseCompletionRequest(R"({"prompt": [[1, 2]]})", "m", &param);
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(nested->job.prompt_ids.size(), 2u);
  auto one = ParseCompletionRequest(R"({"prompt": ["text"]})", "m", &param);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->job.prompt, "text");
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletionRequest(R"({"prompt": ""})", "m", &param).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletionRequest(R"({"prompt": []})", "m", &param).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletionRequest(R"({"prompt": ["a", "b"]})", "m", &param).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletionRequest(R"({"prompt": [1, "x"]})", "m", &param).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletionRequest(R"({"prompt": {"a": 1}})", "m", &param).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseCompletionRequest(R"({})", "m", &param).status()));
  EXPECT_EQ(param, "prompt");
  // Negative ids parse; ValidateJob refuses them before any engine sees them.
  auto neg = ParseCompletionRequest(R"({"prompt": [1, -1]})", "m", &param);
  ASSERT_TRUE(neg.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateJob(neg->job)));
  auto lp = ParseCompletionRequest(R"({"prompt": "x", "logprobs": 2})", "m", &param);
  ASSERT_TRUE(lp.ok());
  EXPECT_TRUE(lp->job.logprobs);
  EXPECT_EQ(lp->job.top_logprobs, 2);
}

TEST(OpenAiJsonTest, Embeddings) {
  std::string param;
  auto a = ParseEmbeddingsRequest(R"({"input": "hello"})", "m", &param);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->texts.size(), 1u);
  auto b = ParseEmbeddingsRequest(R"({"input": ["a", "b"], "encoding_format": "base64"})", "m", &param);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->base64);
  auto c = ParseEmbeddingsRequest(R"({"input": [[1, 2], [3]]})", "m", &param);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->token_inputs.size(), 2u);
  EXPECT_FALSE(ParseEmbeddingsRequest(R"({"input": 5})", "m", &param).ok());
  EXPECT_FALSE(ParseEmbeddingsRequest(R"({"input": [""]})", "m", &param).ok());
  EXPECT_FALSE(ParseEmbeddingsRequest(R"({"input": ["a", [1]]})", "m", &param).ok());
}

TEST(OpenAiJsonTest, StreamChunksAndFinalObject) {
  OpenAiResponseBuilder b(true, "chatcmpl-1", "m", 123, 1, false, 0);
  v1::GatewayGenerateResponse r1;
  r1.set_text_delta("Hel");
  r1.add_tokens()->set_token_id(5);
  auto c1 = b.Chunks(r1);
  ASSERT_EQ(c1.size(), 1u);
  json j1 = json::parse(c1[0]);
  EXPECT_EQ(j1["object"], "chat.completion.chunk");
  EXPECT_EQ(j1["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(j1["choices"][0]["delta"]["content"], "Hel");
  EXPECT_TRUE(j1["choices"][0]["finish_reason"].is_null());
  v1::GatewayGenerateResponse r2;
  r2.set_finish_reason(v1::FINISH_REASON_LENGTH);
  r2.mutable_usage()->set_prompt_tokens(4);
  r2.mutable_usage()->set_completion_tokens(2);
  json j2 = json::parse(b.Chunks(r2)[0]);
  EXPECT_EQ(j2["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(j2["choices"][0]["delta"].contains("role"));
  json u = json::parse(b.UsageChunk());
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["total_tokens"], 6);

  OpenAiResponseBuilder c(false, "cmpl-1", "m", 123, 1, false, 0);
  c.Add(r1);
  c.Add(r2);
  json whole = json::parse(c.Complete());
  EXPECT_EQ(whole["object"], "text_completion");
  EXPECT_EQ(whole["choices"][0]["text"], "Hel");
  EXPECT_EQ(whole["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(whole["usage"]["prompt_tokens"], 4);
}

TEST(OpenAiJsonTest, InvalidUtf8NeverThrows) {
  OpenAiResponseBuilder b(true, "id", "m", 1, 1, true, 1);
  v1::GatewayGenerateResponse r;
  r.set_text_delta("ok");
  auto* t = r.add_tokens();
  t->set_token_id(3);
  auto* alt = t->add_top_logprobs();
  alt->set_token_id(3);
  alt->set_piece("\xC3");
  b.Add(r);
  EXPECT_FALSE(b.Complete().empty());
  EXPECT_FALSE(b.Chunks(r).empty());
}

}  // namespace
}  // namespace llmesh::gateway
