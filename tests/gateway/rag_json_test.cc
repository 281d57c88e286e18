// /v1/rag/query and /v1/rag/chat bodies, the query answer, RagChat jobs from
// gRPC, and how retrieved chunks enter the prompt.
#include "llmesh/gateway/rag_json.h"

#include <gtest/gtest.h>

#include "llmesh/gateway/job.h"
#include "llmesh/gateway/rag_prompt.h"

namespace llmesh::gateway {
namespace {

using json = nlohmann::json;

TEST(RagJsonTest, QueryRequestMapsEveryField) {
  std::string param;
  auto q = ParseRagQueryRequest(
      R"({"collection":"docs","query":"cats","top_k":7,"mode":"lexical","filters":{"lang":"en","tag":["a","b"]}})",
      &param);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->collection(), "docs");
  EXPECT_EQ(q->query(), "cats");
  EXPECT_EQ(q->top_k(), 7);
  EXPECT_EQ(q->mode(), v1::RETRIEVAL_MODE_LEXICAL);
  ASSERT_EQ(q->filters_size(), 2);
  EXPECT_EQ(q->filters(0).key(), "lang");
  EXPECT_EQ(q->filters(0).values_size(), 1);
  EXPECT_EQ(q->filters(1).values(1), "b");
  auto d = ParseRagQueryRequest(R"({"collection":"docs","query":"cats"})", &param);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->top_k(), 5);
  EXPECT_EQ(d->mode(), v1::RETRIEVAL_MODE_HYBRID);
}

TEST(RagJsonTest, BadQueriesAre400sNamingTheField) {
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"query":"x"})", "collection"},
           {R"({"collection":"","query":"x"})", "collection"},
           {R"({"collection":"c"})", "query"},
           {R"({"collection":"c","query":""})", "query"},
           {R"({"collection":"c","query":"x","top_k":0})", "top_k"},
           {R"({"collection":"c","query":"x","top_k":101})", "top_k"},
           {R"({"collection":"c","query":"x","top_k":"3"})", "top_k"},
           {R"({"collection":"c","query":"x","mode":"fuzzy"})", "mode"},
           {R"({"collection":"c","query":"x","filters":[]})", "filters"},
           {R"({"collection":"c","query":"x","filters":{"k":[]}})", "filters"},
           {R"({"collection":"c","query":"x","filters":{"k":[1]}})", "filters"},
       }) {
    std::string param;
    auto q = ParseRagQueryRequest(c.body, &param);
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(param, c.param) << c.body;
  }
  std::string param;
  EXPECT_EQ(ParseRagQueryRequest("[]", &param).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRagQueryRequest("{", &param).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RagJsonTest, QueryAnswerListsTheChunks) {
  v1::QueryResponse resp;
  auto* r = resp.add_results();
  r->set_chunk_id("d1#0");
  r->set_document_id("d1");
  r->set_text("Cats purr.");
  r->set_score(0.5);
  r->set_source("cats.md");
  (*r->mutable_metadata())["lang"] = "en";
  json j = json::parse(RagQueryResponseJson(resp));
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["chunk_id"], "d1#0");
  EXPECT_EQ(j["data"][0]["document_id"], "d1");
  EXPECT_EQ(j["data"][0]["text"], "Cats purr.");
  EXPECT_DOUBLE_EQ(j["data"][0]["score"].get<double>(), 0.5);
  EXPECT_EQ(j["data"][0]["metadata"]["lang"], "en");
}

TEST(RagJsonTest, RagChatIsAChatWithARetrievalSpec) {
  std::string param;
  auto r = ParseRagChatRequest(
      R"({"messages":[{"role":"user","content":"Tell me about cats"}],"collection":"docs","top_k":2,"stream":true,
          "max_tokens":8,"mode":"dense"})",
      "m", &param);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stream);
  EXPECT_EQ(r->job.stopping.max_tokens(), 8);
  ASSERT_TRUE(r->job.retrieval.has_value());
  EXPECT_EQ(r->job.retrieval->collection, "docs");
  EXPECT_EQ(r->job.retrieval->top_k, 2);
  EXPECT_EQ(r->job.retrieval->mode, v1::RETRIEVAL_MODE_DENSE);
  auto d = ParseRagChatRequest(R"({"messages":[{"role":"user","content":"x"}],"collection":"docs"})", "m", &param);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->job.retrieval->top_k, 4);

  auto no_collection = ParseRagChatRequest(R"({"messages":[{"role":"user","content":"x"}]})", "m", &param);
  EXPECT_EQ(no_collection.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(param, "collection");
  auto no_user = ParseRagChatRequest(R"({"messages":[{"role":"system","content":"x"}],"collection":"c"})", "m", &param);
  EXPECT_EQ(no_user.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(param, "messages");
}

TEST(RagJsonTest, GrpcRagChatJobsAreValidated) {
  v1::RagChatRequest req;
  auto* m = req.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("cats?");
  req.set_collection("docs");
  GenerateJob job = JobFromProto(req);
  ASSERT_TRUE(job.retrieval.has_value());
  EXPECT_EQ(job.retrieval->top_k, 4);  // the proto's default
  EXPECT_TRUE(ValidateJob(job).ok());
  EXPECT_EQ(RetrievalQueryOf(job), "cats?");

  GenerateJob no_collection = job;
  no_collection.retrieval->collection.clear();
  EXPECT_NE(ValidateJob(no_collection).message().find("collection"), std::string::npos);
  GenerateJob big_k = job;
  big_k.retrieval->top_k = 500;
  EXPECT_NE(ValidateJob(big_k).message().find("top_k"), std::string::npos);
  GenerateJob empty_user = job;
  empty_user.messages[0].set_content("");
  EXPECT_FALSE(ValidateJob(empty_user).ok());
  GenerateJob bad_filter = job;
  v1::MetadataFilter f;
  f.set_key("lang");
  bad_filter.retrieval->filters.push_back(f);
  EXPECT_NE(ValidateJob(bad_filter).message().find("filters[0]"), std::string::npos);
}

TEST(RagPromptTest, ChunksJoinTheSystemMessageWithTheirIds) {
  std::vector<v1::QueryResult> results(2);
  results[0].set_chunk_id("d1#0");
  results[0].set_text("Cats purr.");
  results[0].set_source("cats.md");
  results[1].set_chunk_id("d2#1");
  results[1].set_text("Dogs bark.");
  std::vector<v1::ChatMessage> messages(1);
  messages[0].set_role("user");
  messages[0].set_content("pets?");
  auto ids = AugmentWithContext("pets", results, &messages);
  EXPECT_EQ(ids, (std::vector<std::string>{"d1#0", "d2#1"}));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].role(), "system");
  const std::string& ctx = messages[0].content();
  EXPECT_NE(ctx.find("[d1#0] (cats.md)\nCats purr."), std::string::npos) << ctx;
  EXPECT_NE(ctx.find("[d2#1]\nDogs bark."), std::string::npos) << ctx;
  EXPECT_LT(ctx.find("d1#0"), ctx.find("d2#1"));  // in rank order
  EXPECT_EQ(messages[1].content(), "pets?");

  // An existing system message is extended; nothing found changes nothing.
  std::vector<v1::ChatMessage> with_system(2);
  with_system[0].set_role("system");
  with_system[0].set_content("Be brief.");
  with_system[1].set_role("user");
  AugmentWithContext("pets", results, &with_system);
  ASSERT_EQ(with_system.size(), 2u);
  EXPECT_EQ(with_system[0].content().rfind("Be brief.\n\n", 0), 0u);
  std::vector<v1::ChatMessage> untouched = with_system;
  EXPECT_TRUE(AugmentWithContext("pets", {}, &untouched).empty());
  EXPECT_EQ(untouched.size(), 2u);
  EXPECT_EQ(untouched[0].content(), with_system[0].content());
}

}  // namespace
}  // namespace llmesh::gateway
