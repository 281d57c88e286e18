// llmesh-gateway end to end on 127.0.0.1 with stories260K: tokenizer, two
// self-registered engine workers, the gateway with an API key. OpenAI HTTP
// (streamed and not), gRPC Generate/Chat, stop strings, auth, malformed
// requests, disconnects freeing engine sequences, metrics.
#include <signal.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "gateway_stack.h"
#include "nlohmann/json.hpp"

namespace llmesh::testing {
namespace {

using json = nlohmann::json;
using namespace llmesh::v1;

const char kKey[] = "test-key-1";

class GatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new GatewayStack();
    ASSERT_TRUE(stack_->Start({"--api-keys", std::string(kKey) + ",other-key"}).ok());
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(stack_->AddEngine().ok());
    ASSERT_TRUE(stack_->WaitForWorkers(2, kKey).ok());
  }
  static void TearDownTestSuite() { delete stack_; }

  static httplib::Client Http() {
    httplib::Client c("127.0.0.1", stack_->http_port);
    c.set_read_timeout(60, 0);
    return c;
  }
  static httplib::Headers Auth(const std::string& key = kKey) { return {{"Authorization", "Bearer " + key}}; }

  struct Streamed {
    grpc::Status status;
    std::string text;
    std::vector<int32_t> tokens;
    FinishReason finish = FINISH_REASON_UNSPECIFIED;
    Usage usage;
  };
  template <typename Req>
  static Streamed Stream(const Req& req, bool chat, const std::string& key = kKey) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
    std::unique_ptr<grpc::ClientReader<GatewayGenerateResponse>> reader;
    if constexpr (std::is_same_v<Req, ChatRequest>) reader = stack_->stub->Chat(&ctx, req);
    else reader = stack_->stub->Generate(&ctx, req);
    (void)chat;
    Streamed s;
    GatewayGenerateResponse r;
    while (reader->Read(&r)) {
      s.text += r.text_delta();
      for (const auto& t : r.tokens()) s.tokens.push_back(t.token_id());
      if (r.finish_reason() != FINISH_REASON_UNSPECIFIED) {
        s.finish = r.finish_reason();
        s.usage = r.usage();
      }
    }
    s.status = reader->Finish();
    return s;
  }
  static GatewayGenerateRequest Greedy(const std::string& prompt, int max_tokens) {
    GatewayGenerateRequest req;
    req.set_model("stories260K");
    req.set_prompt(prompt);
    req.mutable_sampling()->set_temperature(0);
    req.mutable_stopping()->set_max_tokens(max_tokens);
    return req;
  }

  static inline GatewayStack* stack_ = nullptr;
};

TEST_F(GatewayTest, GrpcGenerateStreamsTheGreedyText) {
  Streamed s = Stream(Greedy("Once upon a time", 8), false);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  // ../shared/models/README.md: the reference greedy continuation.
  EXPECT_EQ(s.tokens, (std::vector<int32_t>{432, 383, 286, 261, 376, 298, 315, 421}));
  EXPECT_EQ(s.finish, FINISH_REASON_LENGTH);
  EXPECT_EQ(s.usage.prompt_tokens(), 5);
  EXPECT_EQ(s.usage.completion_tokens(), 8);
  EXPECT_FALSE(s.text.empty());
}

TEST_F(GatewayTest, StreamedEqualsNonStreamedOverHttp) {
  auto cli = Http();
  json body = {{"model", "stories260K"}, {"prompt", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}};
  auto whole = cli.Post("/v1/completions", Auth(), body.dump(), "application/json");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  json w = json::parse(whole->body);
  EXPECT_EQ(w["object"], "text_completion");
  EXPECT_EQ(w["usage"]["completion_tokens"], 24);
  body["stream"] = true;
  auto streamed = cli.Post("/v1/completions", Auth(), body.dump(), "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200);
  EXPECT_NE(streamed->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  std::string text;
  std::string s = streamed->body;
  ASSERT_GE(s.size(), 14u);
  EXPECT_EQ(s.substr(s.size() - 14), "data: [DONE]\n\n");
  for (const std::string& payload : SseData(s)) {
    json chunk = json::parse(payload);
    text += chunk["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, w["choices"][0]["text"].get<std::string>());
}

TEST_F(GatewayTest, ChatWorksForAModelWithoutATemplate) {
  auto cli = Http();
  json body = {{"model", "stories260K"},
               {"messages", {{{"role", "system"}, {"content", "Tell a story."}}, {{"role", "user"}, {"content", "Hi"}}}},
               {"max_tokens", 16},
               {"seed", 7}};
  auto r = cli.Post("/v1/chat/completions", Auth(), body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_FALSE(r->get_header_value("x-request-id").empty());
  // Same seed: same answer.
  auto again = cli.Post("/v1/chat/completions", Auth(), body.dump(), "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(json::parse(again->body)["choices"][0]["message"]["content"], j["choices"][0]["message"]["content"]);
}

TEST_F(GatewayTest, StopStringsAreMatchedAcrossTokensAndNeverReturned) {
  Streamed full = Stream(Greedy("Once upon a time", 40), false);
  ASSERT_TRUE(full.status.ok());
  // A stop string made of the end of one word and the start of the next.
  ASSERT_GT(full.text.size(), 20u);
  std::string stop = full.text.substr(10, 4);
  GatewayGenerateRequest req = Greedy("Once upon a time", 40);
  req.mutable_stopping()->add_stop(stop);
  Streamed s = Stream(req, false);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(s.finish, FINISH_REASON_STOP);
  EXPECT_EQ(s.text.find(stop), std::string::npos);
}

TEST_F(GatewayTest, GrpcChatAndNCompletionsAndLogprobs) {
  ChatRequest req;
  req.set_model("stories260K");
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("Once upon a time");
  req.mutable_stopping()->set_max_tokens(6);
  req.mutable_sampling()->set_seed(1);
  req.set_n(2);
  req.set_logprobs(true);
  req.set_top_logprobs(2);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kKey);
  auto reader = stack_->stub->Chat(&ctx, req);
  GatewayGenerateResponse r;
  int finished = 0, with_logprobs = 0;
  std::set<int> indices;
  while (reader->Read(&r)) {
    indices.insert(r.index());
    for (const auto& t : r.tokens()) with_logprobs += t.top_logprobs_size() == 2 ? 1 : 0;
    if (r.finish_reason() != FINISH_REASON_UNSPECIFIED) ++finished;
    EXPECT_FALSE(r.request_id().empty());
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(finished, 2);
  EXPECT_EQ(indices, (std::set<int>{0, 1}));
  EXPECT_EQ(with_logprobs, 12);
}

TEST_F(GatewayTest, MissingOrWrongKeyIsUnauthenticatedHealthStaysPublic) {
  auto cli = Http();
  std::string body = R"({"prompt": "x", "max_tokens": 2})";
  auto none = cli.Post("/v1/completions", body, "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"]["type"], "authentication_error");
  auto wrong = cli.Post("/v1/completions", Auth("nope"), body, "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto models = cli.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(Stream(Greedy("x", 2), false, "").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Stream(Greedy("x", 2), false, "bad").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Stream(Greedy("x", 2), false, "other-key").status.ok());
}

TEST_F(GatewayTest, MalformedRequestsAre400WithAMessageAndTheNextOneWorks) {
  auto cli = Http();
  const std::string chat = R"("messages": [{"role": "user", "content": "hi"}])";
  std::vector<std::pair<std::string, std::string>> bad = {
      {"/v1/chat/completions", "{not json"},
      {"/v1/chat/completions", "{" + chat + R"(, "temperature": "hot"})"},
      {"/v1/chat/completions", "{" + chat + R"(, "temperature": NaN})"},
      {"/v1/chat/completions", "{" + chat + R"(, "max_tokens": -1})"},
      {"/v1/chat/completions", "{" + chat + R"(, "max_tokens": 1000000000000})"},
      {"/v1/chat/completions", "{" + chat + R"(, "max_tokens": 100000})"},  // more than the context
      {"/v1/chat/completions", R"({"messages": []})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 3}]})"},
      {"/v1/completions", R"({"prompt": ""})"},
      {"/v1/completions", R"({"prompt": [1, -1, 5]})"},
      {"/v1/completions", R"({"prompt": [1, 99999]})"},  // outside the 512-token vocabulary
      {"/v1/completions", R"({"prompt": [1, 2], "logit_bias": {"100000": 1}})"},
      {"/v1/completions", R"({"prompt": 7})"},
      {"/v1/embeddings", R"({"input": 5})"},
  };
  // A prompt longer than the context (512 tokens).
  std::string longp;
  for (int i = 0; i < 700; ++i) longp += "story ";
  bad.push_back({"/v1/completions", json({{"prompt", longp}, {"max_tokens", 4}}).dump()});
  for (const auto& [path, body] : bad) {
    auto r = cli.Post(path, Auth(), body, "application/json");
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->status, 400) << path << " " << body << " -> " << r->body;
    json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty()) << r->body;
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << r->body;
    auto ok = cli.Post("/v1/completions", Auth(), R"({"prompt": "Once", "max_tokens": 3})", "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << "after " << body << ": " << ok->body;
  }
  // gRPC: the same promises.
  GatewayGenerateRequest empty = Greedy("", 4);
  EXPECT_EQ(Stream(empty, false).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  GatewayGenerateRequest nan = Greedy("x", 4);
  nan.mutable_sampling()->set_temperature(std::nanf(""));
  EXPECT_EQ(Stream(nan, false).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  GatewayGenerateRequest neg = Greedy("x", -3);
  EXPECT_EQ(Stream(neg, false).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Stream(Greedy("x", 2), false).status.ok());
  // Unknown model: 404.
  auto unknown = cli.Post("/v1/completions", Auth(), R"({"model": "nope", "prompt": "x"})", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(GatewayTest, ClientDisconnectMidStreamFreesTheEngineSequence) {
  auto generated = [] {
    int64_t n = 0;
    for (const auto& e : stack_->engines) n += EngineStatsOf(e->address()).tokens_generated_total();
    return n;
  };
  for (bool use_grpc : {false, true}) {
    int64_t before = generated();
    if (use_grpc) {
      GatewayGenerateRequest req = Greedy("Once upon a time", 480);
      req.mutable_stopping()->set_ignore_eos(true);
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", std::string("Bearer ") + kKey);
      auto reader = stack_->stub->Generate(&ctx, req);
      GatewayGenerateResponse r;
      ASSERT_TRUE(reader->Read(&r));
      ctx.TryCancel();
      while (reader->Read(&r)) {
      }
      EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    } else {
      RawHttp raw(stack_->http_port);
      ASSERT_TRUE(raw.Post("/v1/completions",
                           R"({"prompt": "Once upon a time", "max_tokens": 480, "ignore_eos": true, "stream": true})",
                           kKey));
      std::string got = raw.ReadUntil("data: {");
      ASSERT_NE(got.find("data: {"), std::string::npos) << got;
      raw.Close();
    }
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    int running = -1;
    while (absl::Now() < deadline) {
      running = 0;
      for (const auto& e : stack_->engines) running += EngineStatsOf(e->address()).running_sequences();
      if (running == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(running, 0) << (use_grpc ? "grpc" : "http");
    // The engine stopped early: the cancel reached it, the 480 tokens were not all generated.
    EXPECT_LT(generated() - before, 480) << (use_grpc ? "grpc" : "http");
  }
}

TEST_F(GatewayTest, ClientDisconnectBeforeANonStreamedAnswerFreesTheEngineSequences) {
  auto engines = [&](auto field) {
    int64_t n = 0;
    for (const auto& e : stack_->engines) n += field(EngineStatsOf(e->address()));
    return n;
  };
  auto running = [&] { return engines([](const auto& s) { return s.running_sequences(); }); };
  auto generated = [&] { return engines([](const auto& s) { return s.tokens_generated_total(); }); };
  const int64_t before = generated();
  // Four completions of up to 480 tokens: long enough to hang up in the middle.
  RawHttp raw(stack_->http_port);
  ASSERT_TRUE(raw.Post("/v1/completions",
                       R"({"prompt": "Once upon a time", "max_tokens": 480, "n": 4, "ignore_eos": true})", kKey));
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && running() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_GT(running(), 0) << "the request never reached an engine";
  raw.Close();
  deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline && running() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(running(), 0);
  EXPECT_LT(generated() - before, 4 * 480) << "the hang-up did not stop the generation";
}

TEST_F(GatewayTest, ClientDeadlineReachesTheEngineAndStopsItsWork) {
  GatewayGenerateRequest req = Greedy("Once upon a time", 480);
  req.mutable_stopping()->set_ignore_eos(true);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kKey);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(30));
  auto reader = stack_->stub->Generate(&ctx, req);
  GatewayGenerateResponse r;
  while (reader->Read(&r)) {
  }
  grpc::Status st = reader->Finish();
  if (st.ok()) GTEST_SKIP() << "the whole generation fit in 30 ms on this machine";
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  int running = -1;
  while (absl::Now() < deadline) {
    running = 0;
    for (const auto& e : stack_->engines) running += EngineStatsOf(e->address()).running_sequences();
    if (running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(running, 0);
  EXPECT_TRUE(Stream(Greedy("x", 2), false).status.ok());
}

TEST_F(GatewayTest, EmbeddingsModelsAndMetrics) {
  auto cli = Http();
  auto e = cli.Post("/v1/embeddings", Auth(), R"({"model": "stories260K", "input": ["hello", "world"]})",
                    "application/json");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->status, 200) << e->body;
  json j = json::parse(e->body);
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_GT(j["data"][0]["embedding"].size(), 0u);
  auto m = cli.Get("/v1/models", Auth());
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  EXPECT_EQ(json::parse(m->body)["data"][0]["id"], "stories260K");
  auto metrics = cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name : {"llmesh_gateway_requests_total{route=\"/v1/embeddings\",status=\"200\"}",
                           "llmesh_gateway_time_to_first_token_seconds_bucket",
                           "llmesh_gateway_inter_token_latency_seconds_count", "llmesh_gateway_queue_depth",
                           "llmesh_gateway_worker_outstanding{worker=", "llmesh_gateway_worker_healthy{worker=",
                           "llmesh_gateway_generation_tokens_total"})
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
}

// A gateway with room for one request and one waiting: the rest get 429.
TEST(GatewayOverloadTest, OverloadIs429AndAdmittedRequestsSucceed) {
  GatewayStack stack;
  ASSERT_TRUE(stack.Start({"--max-concurrent", "1", "--max-queue", "1"}).ok());
  ASSERT_TRUE(stack.AddEngine().ok());
  ASSERT_TRUE(stack.WaitForWorkers(1).ok());
  const int n = 12;
  std::vector<int> codes(n, 0);
  std::vector<std::string> retry_after(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", stack.http_port);
      c.set_read_timeout(60, 0);
      auto r = c.Post("/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 300, "ignore_eos": true})",
                      "application/json");
      if (r) {
        codes[i] = r->status;
        retry_after[i] = r->get_header_value("Retry-After");
      }
    });
  }
  for (auto& t : threads) t.join();
  int ok = 0, limited = 0;
  for (int i = 0; i < n; ++i) {
    if (codes[i] == 200) ++ok;
    else if (codes[i] == 429) {
      ++limited;
      EXPECT_FALSE(retry_after[i].empty());
    } else ADD_FAILURE() << "unexpected status " << codes[i];
  }
  EXPECT_GE(ok, 2);
  EXPECT_GE(limited, 1);
  // Recovers when load drops.
  httplib::Client c("127.0.0.1", stack.http_port);
  auto r = c.Post("/v1/completions", R"({"prompt": "x", "max_tokens": 2})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// SIGTERM: in-flight streams finish, the process exits 0 within its grace.
TEST(GatewayShutdownTest, SigtermDrainsInFlightStreams) {
  GatewayStack stack;
  ASSERT_TRUE(stack.Start({}).ok());
  ASSERT_TRUE(stack.AddEngine().ok());
  ASSERT_TRUE(stack.WaitForWorkers(1).ok());
  GatewayGenerateRequest req;
  req.set_model("stories260K");
  req.set_prompt("Once upon a time");
  req.mutable_stopping()->set_max_tokens(400);
  req.mutable_stopping()->set_ignore_eos(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stack.stub->Generate(&ctx, req);
  GatewayGenerateResponse r;
  int tokens = 0;
  ASSERT_TRUE(reader->Read(&r));
  tokens += r.tokens_size();
  stack.gateway.process->Signal(SIGTERM);
  while (reader->Read(&r)) tokens += r.tokens_size();
  grpc::Status st = reader->Finish();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(tokens, 400);
  auto code = stack.gateway.process->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

// TLS on both listeners, with a self-signed certificate made at test time.
TEST(GatewayTlsTest, GrpcAndHttpOverTls) {
  std::string dir = MakeTempDir("tls");
  std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  std::string cmd = absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -addext "
                                 "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ", key, " -out ", cert,
                                 " > ", dir, "/openssl.log 2>&1");
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl could not make a certificate";
  // The stack helper's insecure stub cannot reach a TLS listener: start the processes here.
  auto tok = StartService(Bin("llmesh-tokenizer"), {"--model-dir", ModelDir()});
  ASSERT_TRUE(tok.ok());
  int http_port = 0;
  auto gw = StartGatewayProcess(
      {"--tokenizer", tok->address(), "--tls-cert-file", cert, "--tls-key-file", key, "--api-keys", "tls-key"},
      &http_port);
  ASSERT_TRUE(gw.ok()) << gw.status();
  httplib::SSLClient https("127.0.0.1", http_port);
  https.set_ca_cert_path(cert.c_str());
  https.enable_server_certificate_verification(true);
  auto health = https.Get("/health");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 503);  // no worker yet, but TLS and routing work
  auto models = https.Get("/v1/models", {{"Authorization", "Bearer tls-key"}});
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);

  std::ifstream cf(cert);
  std::string pem((std::istreambuf_iterator<char>(cf)), std::istreambuf_iterator<char>());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = pem;
  auto channel = grpc::CreateChannel(gw->address(), grpc::SslCredentials(ssl));
  auto stub = Gateway::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ctx.AddMetadata("authorization", "Bearer tls-key");
  GatewayListModelsResponse resp;
  grpc::Status st = stub->ListModels(&ctx, GatewayListModelsRequest(), &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  // Plaintext is refused.
  auto plain = Gateway::NewStub(rpc::CreateChannel(gw->address()));
  grpc::ClientContext pctx;
  pctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  EXPECT_FALSE(plain->ListModels(&pctx, GatewayListModelsRequest(), &resp).ok());
}

}  // namespace
}  // namespace llmesh::testing
