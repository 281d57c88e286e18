// The rag library end to end with fakes: create, upsert, query (dense,
// lexical, hybrid, filters), delete, reopen/recovery, consistency under
// concurrent ingest, retries.
#include "llmesh/rag/rag.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "fakes.h"

namespace llmesh::rag {
namespace {

using testing::FakeEmbedder;
using testing::FakeTokenCounter;
using testing::FlakyEmbedder;

class RagLibraryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            absl::StrCat("rag_lib_", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_", ::getpid()))
               .string();
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    rag_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    rag_.reset();
    RagOptions o;
    o.data_dir = dir_;
    auto r = Rag::Open(o);
    ASSERT_TRUE(r.ok()) << r.status();
    rag_ = std::move(*r);
  }
  void Create(const std::string& name, int32_t dim = 0) {
    CollectionConfig c;
    c.name = name;
    c.embedding_model = "fake";
    c.dimension = dim;
    c.chunking = {32, 4};
    auto info = rag_->CreateCollection(c, embedder_);
    ASSERT_TRUE(info.ok()) << info.status();
  }
  UpsertResult Upsert(const std::string& coll, std::vector<DocumentInput> docs) {
    auto r = rag_->Upsert(coll, docs, embedder_, counter_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : UpsertResult{};
  }
  std::vector<QueryHit> Query(const std::string& coll, const std::string& q, RetrievalMode mode, int k = 5,
                              std::vector<MetadataFilter> filters = {}) {
    QueryOptions o{q, k, mode, std::move(filters)};
    auto r = rag_->Query(coll, o, embedder_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<QueryHit>{};
  }
  static std::vector<std::string> DocIds(const std::vector<QueryHit>& hits) {
    std::vector<std::string> out;
    for (const auto& h : hits) out.push_back(h.document_id);
    return out;
  }

  std::string dir_;
  std::unique_ptr<Rag> rag_;
  FakeEmbedder embedder_{64};
  FakeTokenCounter counter_;
};

DocumentInput Doc(std::string id, std::string text, Metadata md = {}) {
  return {std::move(id), std::move(text), DocFormat::kPlain, "src://" + std::string("x"), std::move(md)};
}

TEST_F(RagLibraryTest, CreateProbesDimensionAndListsAndDeletes) {
  Create("a");
  Create("b", 64);
  auto info = rag_->GetCollection("a");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->config.dimension, 64);  // from the probe
  EXPECT_EQ(info->config.chunking.chunk_tokens, 32);
  EXPECT_EQ(info->config.hnsw.m, 16);
  CollectionConfig dup{"a", "fake", 0, Metric::kCosine, {}, {}};
  EXPECT_TRUE(absl::IsAlreadyExists(rag_->CreateCollection(dup, embedder_).status()));
  EXPECT_EQ(rag_->ListCollections()->size(), 2u);
  ASSERT_TRUE(rag_->DeleteCollection("a").ok());
  EXPECT_TRUE(absl::IsNotFound(rag_->GetCollection("a").status()));
  EXPECT_TRUE(absl::IsNotFound(rag_->DeleteCollection("a")));
  Reopen();
  EXPECT_EQ(rag_->ListCollections()->size(), 1u);
}

TEST_F(RagLibraryTest, BadInputIsInvalidArgument) {
  Create("c");
  CollectionConfig bad{"", "fake", 0, Metric::kCosine, {}, {}};
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->CreateCollection(bad, embedder_).status()));
  bad.name = "../escape";
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->CreateCollection(bad, embedder_).status()));
  bad.name = "ok";
  bad.embedding_model = "";
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->CreateCollection(bad, embedder_).status()));
  bad.embedding_model = "fake";
  bad.hnsw.m = 100000;
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->CreateCollection(bad, embedder_).status()));
  EXPECT_TRUE(absl::IsNotFound(rag_->Upsert("nope", {Doc("d", "x")}, embedder_, counter_).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->Upsert("c", {Doc("", "x")}, embedder_, counter_).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->Upsert("c", {Doc("d", " ")}, embedder_, counter_).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(rag_->Upsert("c", {Doc("d", "x"), Doc("d", "y")}, embedder_, counter_).status()));
  for (int k : {-1, 101}) {
    QueryOptions o{"q", k, RetrievalMode::kHybrid, {}};
    EXPECT_TRUE(absl::IsInvalidArgument(rag_->Query("c", o, embedder_).status())) << k;
  }
  QueryOptions o{"q", 5, RetrievalMode::kHybrid, {{"", {"v"}}}};
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->Query("c", o, embedder_).status()));
  o.filters = {{"k", {}}};
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->Query("c", o, embedder_).status()));
  // A model whose vectors don't fit the collection.
  Create("d", 16);
  EXPECT_TRUE(absl::IsInvalidArgument(rag_->Upsert("d", {Doc("x", "text")}, embedder_, counter_).status()));
}

TEST_F(RagLibraryTest, DenseLexicalHybridFindTheRightDocument) {
  Create("c");
  Upsert("c", {Doc("cats", "Cats purr and chase mice around the barn."),
               Doc("rockets", "Rockets burn fuel to reach orbit around the earth."),
               Doc("bread", "Bakers knead dough and bake bread in hot ovens.")});
  for (auto mode : {RetrievalMode::kDense, RetrievalMode::kLexical, RetrievalMode::kHybrid}) {
    auto hits = Query("c", "which rockets reach orbit", mode, 2);
    ASSERT_FALSE(hits.empty()) << static_cast<int>(mode);
    EXPECT_EQ(hits[0].document_id, "rockets") << static_cast<int>(mode);
    EXPECT_EQ(hits[0].source, "src://x");
  }
  auto lex = Query("c", "ovens", RetrievalMode::kLexical);
  ASSERT_EQ(lex.size(), 1u);
  EXPECT_GT(lex[0].score, 0);  // negated bm25
  EXPECT_TRUE(Query("c", "?!", RetrievalMode::kLexical).empty());
  auto hybrid = Query("c", "bread", RetrievalMode::kHybrid, 3);
  ASSERT_FALSE(hybrid.empty());
  EXPECT_NEAR(hybrid[0].score, 2.0 / 61, 1e-9);  // first in both lists
}

TEST_F(RagLibraryTest, UpsertReplacesAndDeleteRemovesFromEverything) {
  Create("c");
  auto r = Upsert("c", {Doc("d1", "zebra stripes are unique"), Doc("d2", "giraffes have long necks")});
  EXPECT_EQ(r.documents, 2);
  Upsert("c", {Doc("d1", "penguins cannot fly")});
  EXPECT_TRUE(Query("c", "zebra", RetrievalMode::kLexical).empty());
  EXPECT_EQ(DocIds(Query("c", "penguins", RetrievalMode::kLexical)), std::vector<std::string>{"d1"});
  auto info = rag_->GetCollection("c");
  EXPECT_EQ(info->document_count, 2);
  EXPECT_EQ(info->chunk_count, 2);
  EXPECT_GT(info->size_bytes, 0);

  auto n = rag_->DeleteDocuments("c", {"d1", "missing"});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_TRUE(Query("c", "penguins", RetrievalMode::kLexical).empty());
  for (const auto& h : Query("c", "penguins cannot fly", RetrievalMode::kDense, 10)) EXPECT_NE(h.document_id, "d1");
  EXPECT_EQ(rag_->GetCollection("c")->document_count, 1);
  Reopen();  // and after a restart
  for (const auto& h : Query("c", "penguins cannot fly", RetrievalMode::kDense, 10)) EXPECT_NE(h.document_id, "d1");
  EXPECT_EQ(rag_->GetCollection("c")->chunk_count, 1);
}

TEST_F(RagLibraryTest, FiltersAreEqualityAndSetMembershipAnded) {
  Create("c");
  std::vector<DocumentInput> docs;
  for (int i = 0; i < 30; ++i)
    docs.push_back(Doc(absl::StrCat("d", i), absl::StrCat("shared words about topic number ", i),
                       {{"lang", i % 2 ? "en" : "fr"}, {"year", absl::StrCat(2020 + i % 3)}}));
  Upsert("c", docs);
  for (auto mode : {RetrievalMode::kDense, RetrievalMode::kLexical, RetrievalMode::kHybrid}) {
    auto hits = Query("c", "shared words topic", mode, 100, {{"lang", {"en"}}});
    EXPECT_EQ(hits.size(), 15u);
    for (const auto& h : hits) EXPECT_EQ(h.metadata.at("lang"), "en");
    hits = Query("c", "shared words topic", mode, 100, {{"lang", {"en"}}, {"year", {"2020", "2021"}}});
    EXPECT_EQ(hits.size(), 10u);
    for (const auto& h : hits) {
      EXPECT_EQ(h.metadata.at("lang"), "en");
      EXPECT_NE(h.metadata.at("year"), "2022");
    }
    EXPECT_TRUE(Query("c", "shared", mode, 5, {{"lang", {"de"}}}).empty());
  }
}

TEST_F(RagLibraryTest, FilteredDenseSearchFallsBackToHnswWhenManyMatch) {
  rag_.reset();
  RagOptions o;
  o.data_dir = dir_;
  o.collection.exact_filter_limit = 4;  // force the over-fetch path
  rag_ = std::move(*Rag::Open(o));
  Create("c");
  std::vector<DocumentInput> docs;
  for (int i = 0; i < 40; ++i)
    docs.push_back(Doc(absl::StrCat("d", i), absl::StrCat("text ", i, " item"), {{"g", i < 10 ? "a" : "b"}}));
  Upsert("c", docs);
  auto hits = Query("c", "text 3 item", RetrievalMode::kDense, 8, {{"g", {"a"}}});
  EXPECT_EQ(hits.size(), 8u);
  for (const auto& h : hits) EXPECT_EQ(h.metadata.at("g"), "a");
}

TEST_F(RagLibraryTest, MarkdownHeadingsAreInChunks) {
  Create("c");
  DocumentInput d{"md", "# Volcanoes\nLava flows **downhill**.\n\n# Glaciers\nIce moves [slowly](http://x).\n",
                  DocFormat::kMarkdown, "", {}};
  auto r = Upsert("c", {d});
  EXPECT_EQ(r.chunks, 2);
  auto hits = Query("c", "glaciers", RetrievalMode::kLexical);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].text, "Glaciers\n\nIce moves slowly.");
}

TEST_F(RagLibraryTest, EmbeddingsAreBatchedAndRetried) {
  Create("c");
  std::string text;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&text, "Sentence number ", i, " has several words in it.\n\n");
  FlakyEmbedder flaky(embedder_, 2, absl::UnavailableError("worker restarting"));
  RetryingEmbedder retrying(flaky, {4, absl::Milliseconds(1), 2.0, absl::Milliseconds(5)});
  embedder_.max_batch = 0;
  auto r = rag_->Upsert("c", {Doc("long", text)}, retrying, counter_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->chunks, 16);
  EXPECT_EQ(embedder_.max_batch.load(), 16);
  EXPECT_EQ(flaky.calls, 2 + (r->chunks + 15) / 16);

  FlakyEmbedder down(embedder_, 100, absl::UnavailableError("engine down"));
  RetryingEmbedder gives_up(down, {3, absl::Milliseconds(1), 2.0, absl::Milliseconds(5)});
  EXPECT_TRUE(absl::IsUnavailable(rag_->Upsert("c", {Doc("x", "y")}, gives_up, counter_).status()));
  EXPECT_EQ(down.calls, 3);
  FlakyEmbedder bad(embedder_, 100, absl::InvalidArgumentError("bad"));
  RetryingEmbedder no_retry(bad, {3, absl::Milliseconds(1), 2.0, absl::Milliseconds(5)});
  EXPECT_FALSE(rag_->Upsert("c", {Doc("x", "y")}, no_retry, counter_).ok());
  EXPECT_EQ(bad.calls, 1);
  EXPECT_EQ(rag_->GetCollection("c")->document_count, 1);  // failures wrote nothing
}

TEST_F(RagLibraryTest, RecoversFromMissingCorruptAndStaleIndexes) {
  Create("c");
  for (int i = 0; i < 20; ++i) Upsert("c", {Doc(absl::StrCat("d", i), absl::StrCat("unique", i, " common words"))});
  ASSERT_TRUE(rag_->SaveAll().ok());
  // After the save: more upserts and a delete the saved index does not know.
  for (int i = 20; i < 30; ++i) Upsert("c", {Doc(absl::StrCat("d", i), absl::StrCat("unique", i, " common words"))});
  ASSERT_EQ(*rag_->DeleteDocuments("c", {"d3", "d25"}), 2);
  Reopen();  // no save: stale index + watermark
  auto c = rag_->Find("c");
  EXPECT_TRUE((*c)->recovery().loaded);
  EXPECT_EQ((*c)->recovery().added, 9);  // d20..d29 less d25
  EXPECT_EQ((*c)->recovery().dropped, 1);
  auto check = [&] {
    auto hits = Query("c", "common words", RetrievalMode::kDense, 100);
    EXPECT_EQ(hits.size(), 28u);
    for (const auto& h : hits) EXPECT_TRUE(h.document_id != "d3" && h.document_id != "d25");
    EXPECT_EQ(DocIds(Query("c", "unique27 common words", RetrievalMode::kDense, 1)), std::vector<std::string>{"d27"});
  };
  check();
  // Corrupt index: rebuilt from SQLite.
  ASSERT_TRUE(rag_->SaveAll().ok());
  rag_.reset();
  std::string index = dir_ + "/collections/c/dense.hnsw";
  std::filesystem::resize_file(index, std::filesystem::file_size(index) / 2);
  Reopen();
  EXPECT_FALSE((*rag_->Find("c"))->recovery().loaded);
  EXPECT_EQ((*rag_->Find("c"))->recovery().added, 28);
  check();
  // Missing index.
  rag_.reset();
  std::filesystem::remove(index);
  Reopen();
  check();
  // A half-made collection directory from a crashed create is cleaned away.
  std::filesystem::create_directories(dir_ + "/collections/.new-x-1");
  Reopen();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/collections/.new-x-1"));
  EXPECT_EQ(rag_->ListCollections()->size(), 1u);
}

TEST_F(RagLibraryTest, QueriesSeeWholeUpsertsDuringConcurrentIngest) {
  Create("c");
  // Every document has 3 chunks carrying its batch tag; a reader must see a
  // batch's documents all or none.
  std::atomic<bool> done{false};
  std::atomic<int> violations{0}, queries{0};
  std::thread writer([&] {
    for (int b = 0; b < 40; ++b) {
      std::vector<DocumentInput> docs;
      for (int d = 0; d < 3; ++d)
        docs.push_back(Doc(absl::StrCat("b", b, "d", d), absl::StrCat("batchtag", b, " alpha beta gamma delta ", d)));
      Upsert("c", docs);
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&, t] {
      int b = t;
      while (!done) {
        QueryOptions o{absl::StrCat("batchtag", b % 40), 10, RetrievalMode::kHybrid, {}};
        auto hits = rag_->Query("c", o, embedder_);
        if (!hits.ok()) {
          ++violations;
          continue;
        }
        int tagged = 0;
        for (const auto& h : *hits) tagged += h.text.find(absl::StrCat("batchtag", b % 40, " ")) != std::string::npos;
        if (tagged != 0 && tagged != 3) ++violations;
        auto info = rag_->GetCollection("c");
        if (!info.ok() || info->document_count % 3 != 0 || info->chunk_count != info->document_count) ++violations;
        ++queries;
        b += 7;
      }
    });
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(queries.load(), 0);
  EXPECT_EQ(rag_->GetCollection("c")->document_count, 120);
}

}  // namespace
}  // namespace llmesh::rag
