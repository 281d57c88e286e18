// Retrieval through the gateway, over processes on 127.0.0.1 with
// stories260K: tokenizer, one engine (a static worker of the gateway, and
// rag-svc's embedder), rag-svc, and the gateway with --rag. Collections and
// documents go in through the gateway's gRPC API; Query and RagChat come back
// over gRPC and HTTP (/v1/rag/query, /v1/rag/chat, streamed and not).
#include <set>

#include <gtest/gtest.h>

#include "gateway_stack.h"
#include "llmesh/v1/rag.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace llmesh::testing {
namespace {

using json = nlohmann::json;
using namespace llmesh::v1;

constexpr char kCollection[] = "pets";

class GatewayRagTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new BackendStack();
    absl::Status started = stack_->Start("llmesh-rag", {"--data-dir", MakeTempDir("gw-rag"), "--log-level", "warn"},
                                         absl::Seconds(60), "--rag", {"--health-interval", "200ms"});
    ASSERT_TRUE(started.ok()) << started;
    // Routable once the static worker passed a health check.
    for (int i = 0; i < 400; ++i) {
      auto h = Http().Get("/health");
      if (h && h->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }

    CreateCollectionRequest create;
    create.set_name(kCollection);
    create.set_embedding_model("stories260K");
    create.mutable_chunking()->set_chunk_tokens(48);
    Collection c;
    grpc::Status st = stack_->stub->CreateCollection(Ctx().get(), create, &c);
    ASSERT_TRUE(st.ok()) << st.error_message();
    UpsertRequest up;
    up.set_collection(kCollection);
    const std::vector<std::pair<std::string, std::string>> docs = {
        {"cat", "The cat sat in the sun and purred. Cats like warm places and fish."},
        {"dog", "The dog ran to the park with a red ball. Dogs like to play fetch."},
        {"bird", "A little bird sang in the tree every morning. Birds build nests of twigs."},
        {"fish", "The fish swam in a round bowl of water. Fish have shiny scales."},
    };
    for (const auto& [id, text] : docs) {
      auto* d = up.add_documents();
      d->set_id(id);
      d->set_text(text);
      d->set_source("pets/" + id);
      (*d->mutable_metadata())["kind"] = id == "fish" ? "water" : "land";
    }
    UpsertResponse ur;
    st = stack_->stub->Upsert(Ctx().get(), up, &ur);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(ur.documents(), 4);
  }
  static void TearDownTestSuite() { delete stack_; }

  static std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 60) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    return ctx;
  }
  static httplib::Client Http() {
    httplib::Client c("127.0.0.1", stack_->http_port);
    c.set_read_timeout(60, 0);
    return c;
  }
  static std::vector<std::string> QueryIds(const std::string& q, int top_k) {
    QueryRequest req;
    req.set_collection(kCollection);
    req.set_query(q);
    req.set_top_k(top_k);
    req.set_mode(RETRIEVAL_MODE_LEXICAL);
    QueryResponse resp;
    grpc::Status st = stack_->stub->Query(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<std::string> ids;
    for (const auto& r : resp.results()) ids.push_back(r.chunk_id());
    return ids;
  }

  static inline BackendStack* stack_ = nullptr;
};

TEST_F(GatewayRagTest, QueryOverGrpcAndHttp) {
  QueryRequest req;
  req.set_collection(kCollection);
  req.set_query("purred cat");
  req.set_top_k(2);
  req.set_mode(RETRIEVAL_MODE_LEXICAL);
  QueryResponse resp;
  grpc::Status st = stack_->stub->Query(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(resp.results_size(), 1);
  EXPECT_EQ(resp.results(0).document_id(), "cat");

  auto r = Http().Post("/v1/rag/query",
                       R"({"collection":"pets","query":"shiny scales","top_k":3,"mode":"hybrid","filters":{"kind":"water"}})",
                       "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_EQ(j["data"].size(), 1u);  // the filter leaves the fish only
  EXPECT_EQ(j["data"][0]["document_id"], "fish");
  EXPECT_EQ(j["data"][0]["source"], "pets/fish");
  EXPECT_EQ(j["data"][0]["metadata"]["kind"], "water");

  auto missing = Http().Post("/v1/rag/query", R"({"collection":"nope","query":"x"})", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404) << missing->body;
  req.set_collection("nope");
  EXPECT_EQ(stack_->stub->Query(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GatewayRagTest, GrpcRagChatStreamsAndCitesTheRetrievedChunks) {
  RagChatRequest req;
  req.set_collection(kCollection);
  req.set_top_k(2);
  req.set_mode(RETRIEVAL_MODE_LEXICAL);
  auto* m = req.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("Where did the dog run with the ball?");
  req.mutable_chat()->mutable_sampling()->set_temperature(0);
  req.mutable_chat()->mutable_stopping()->set_max_tokens(16);
  auto ctx = Ctx();
  auto reader = stack_->stub->RagChat(ctx.get(), req);
  GatewayGenerateResponse r, last;
  int messages = 0;
  std::string text;
  while (reader->Read(&r)) {
    ++messages;
    text += r.text_delta();
    if (r.finish_reason() != FINISH_REASON_UNSPECIFIED) {
      last = r;
    } else {
      EXPECT_EQ(r.cited_chunk_ids_size(), 0);  // only on the last message
    }
  }
  grpc::Status st = reader->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_GT(messages, 1);
  EXPECT_FALSE(text.empty());
  std::vector<std::string> cited(last.cited_chunk_ids().begin(), last.cited_chunk_ids().end());
  EXPECT_EQ(cited, QueryIds("Where did the dog run with the ball?", 2));
  ASSERT_FALSE(cited.empty());

  // The chunks were in the prompt: it is longer than the same chat without them.
  ChatRequest plain = req.chat();
  auto plain_ctx = Ctx();
  auto plain_reader = stack_->stub->Chat(plain_ctx.get(), plain);
  GatewayGenerateResponse p, plain_last;
  while (plain_reader->Read(&p))
    if (p.finish_reason() != FINISH_REASON_UNSPECIFIED) plain_last = p;
  ASSERT_TRUE(plain_reader->Finish().ok());
  EXPECT_GT(last.usage().prompt_tokens(), plain_last.usage().prompt_tokens() + 10);
}

TEST_F(GatewayRagTest, HttpRagChatWholeAndStreamed) {
  json body = {{"collection", kCollection},
               {"top_k", 3},
               {"mode", "lexical"},
               {"messages", {{{"role", "system"}, {"content", "Answer briefly."}},
                             {{"role", "user"}, {"content", "What does the little bird build?"}}}},
               {"max_tokens", 12},
               {"temperature", 0}};
  auto whole = Http().Post("/v1/rag/chat", body.dump(), "application/json");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  json w = json::parse(whole->body);
  EXPECT_EQ(w["object"], "chat.completion");
  std::vector<std::string> expected = QueryIds("What does the little bird build?", 3);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(w["cited_chunk_ids"].get<std::vector<std::string>>(), expected);
  std::string content = w["choices"][0]["message"]["content"];

  body["stream"] = true;
  auto streamed = Http().Post("/v1/rag/chat", body.dump(), "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  std::string s = streamed->body, text;
  json cited;
  for (const std::string& payload : SseData(s)) {
    json chunk = json::parse(payload);
    text += chunk["choices"][0]["delta"].value("content", "");
    if (chunk.contains("cited_chunk_ids")) cited = chunk["cited_chunk_ids"];
  }
  EXPECT_EQ(text, content);  // greedy: streamed == whole
  EXPECT_EQ(cited.get<std::vector<std::string>>(), expected);

  auto missing = Http().Post("/v1/rag/chat",
                             R"({"collection":"nope","messages":[{"role":"user","content":"hi"}],"max_tokens":4})",
                             "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404) << missing->body;
  auto bad = Http().Post("/v1/rag/chat", R"({"collection":"pets","messages":[{"role":"user","content":"hi"}],"top_k":0})",
                         "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "top_k");
}

}  // namespace
}  // namespace llmesh::testing
