// llmesh-rag as a real process with llmesh-tokenizer and llmesh-engine
// (stories260K, and a bag-of-words BERT embedder made by `llmesh synth`) on
// 127.0.0.1: collections, errors, filters, delete, retrieval quality
// (recall@5, lexical vs hybrid), consistent reads during ingest, and nothing
// acknowledged lost when the process is SIGKILLed.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/v1/rag.grpc.pb.h"
#include "service_process.h"

namespace llmesh::testing {
namespace {

using namespace llmesh::v1;

constexpr char kModel[] = "stories260K";
// A BERT encoder (all-MiniLM-L6-v2's shape, bge's WordPiece vocabulary)
// whose weights make it a bag-of-words embedder: random word vectors,
// identity layers, mean pooling (engine-svc bert_synth.h). Untrained, yet
// its cosine similarity counts shared words, so the dense retriever it gives
// carries real signal through the real engine path.
constexpr char kBowModel[] = "bow-minilm";

// `llmesh synth` writes the bag-of-words embedder into `dir`.
absl::Status SynthBowEmbedder(const std::string& dir) {
  auto synth = Subprocess::Start(
      {std::string(LLMESH_BIN_DIR) + "/llmesh", "synth", "--shape", "minilm-l6", "--bag-of-words", "--type", "F16",
       "--vocab-from", std::string(LLMESH_SHARED_DIR) + "/tokenizer-vectors/ggml-vocab-bert-bge.gguf",
       absl::StrCat(dir, "/", kBowModel, ".gguf")},
      dir + "/synth.log");
  if (!synth.ok()) return synth.status();
  auto code = (*synth)->Wait(absl::Seconds(120));
  if (!code.ok()) return code.status();
  if (*code != 0) return absl::InternalError(absl::StrCat("llmesh synth exited with ", *code, "; see ", dir, "/synth.log"));
  return absl::OkStatus();
}

class RagServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The shared stories260K beside the synthesized embedder, one directory
    // for the tokenizer and the engine alike.
    std::string models = MakeTempDir("rag-models");
    std::filesystem::create_symlink(std::string(LLMESH_SHARED_DIR) + "/models/stories260K.gguf",
                                    models + "/stories260K.gguf");
    ASSERT_TRUE(SynthBowEmbedder(models).ok());
    auto tok = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-tokenizer", {"--model-dir", models});
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = new Service(std::move(*tok));
    auto eng = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-engine",
                            {"--model-dir", models, "--model", absl::StrCat(kModel, ",", kBowModel), "--threads", "1",
                             "--kv-budget-mb", "16"});
    ASSERT_TRUE(eng.ok()) << eng.status();
    engine_ = new Service(std::move(*eng));
    ASSERT_TRUE(WaitForServing(tokenizer_->address(), absl::Seconds(30)).ok());
    ASSERT_TRUE(WaitForServing(engine_->address(), absl::Seconds(30)).ok());
    data_dir_ = new std::string(MakeTempDir("rag-data"));
    StartRag();
  }
  static void TearDownTestSuite() {
    delete stub_;
    delete rag_;
    delete engine_;
    delete tokenizer_;
    delete data_dir_;
  }

  // (Re)starts llmesh-rag on the suite's data directory.
  static void StartRag(const std::vector<std::string>& extra = {}) {
    delete stub_;
    stub_ = nullptr;
    delete rag_;
    rag_ = nullptr;
    std::vector<std::string> args = {"--data-dir",   *data_dir_, "--engine",        engine_->address(),
                                     "--tokenizer",  tokenizer_->address(), "--save-interval", "1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto rag = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-rag", args);
    ASSERT_TRUE(rag.ok()) << rag.status();
    rag_ = new Service(std::move(*rag));
    ASSERT_TRUE(WaitForServing(rag_->address(), absl::Seconds(60)).ok());
    stub_ = RagService::NewStub(rpc::CreateChannel(rag_->address())).release();
  }

  static grpc::Status Create(const std::string& name, int32_t dimension = 0, int32_t chunk_tokens = 0,
                             Collection* out = nullptr, const std::string& embedding_model = kModel) {
    CreateCollectionRequest req;
    req.set_name(name);
    req.set_embedding_model(embedding_model);
    req.set_dimension(dimension);
    req.mutable_chunking()->set_chunk_tokens(chunk_tokens);
    Collection c;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
    return stub_->CreateCollection(ctx.get(), req, out ? out : &c);
  }

  static Document Doc(const std::string& id, const std::string& text,
                      std::map<std::string, std::string> metadata = {}) {
    Document d;
    d.set_id(id);
    d.set_text(text);
    d.set_source("test://" + id);
    for (const auto& [k, v] : metadata) (*d.mutable_metadata())[k] = v;
    return d;
  }

  static grpc::Status Upsert(const std::string& coll, const std::vector<Document>& docs,
                             absl::Duration timeout = absl::Seconds(60)) {
    UpsertRequest req;
    req.set_collection(coll);
    for (const auto& d : docs) *req.add_documents() = d;
    UpsertResponse resp;
    auto ctx = rpc::ContextWithTimeout(timeout);
    return stub_->Upsert(ctx.get(), req, &resp);
  }

  static grpc::Status Query(const std::string& coll, const std::string& q, RetrievalMode mode, int top_k,
                            QueryResponse* out, std::vector<MetadataFilter> filters = {}) {
    QueryRequest req;
    req.set_collection(coll);
    req.set_query(q);
    req.set_top_k(top_k);
    req.set_mode(mode);
    for (auto& f : filters) *req.add_filters() = f;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
    return stub_->Query(ctx.get(), req, out);
  }

  static Collection Get(const std::string& name) {
    GetCollectionRequest req;
    req.set_name(name);
    Collection c;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    EXPECT_TRUE(stub_->GetCollection(ctx.get(), req, &c).ok());
    return c;
  }

  static MetadataFilter Filter(const std::string& key, std::vector<std::string> values) {
    MetadataFilter f;
    f.set_key(key);
    for (auto& v : values) f.add_values(v);
    return f;
  }

  static inline Service* tokenizer_ = nullptr;
  static inline Service* engine_ = nullptr;
  static inline Service* rag_ = nullptr;
  static inline std::string* data_dir_ = nullptr;
  static inline RagService::Stub* stub_ = nullptr;
};

TEST_F(RagServiceTest, CollectionLifecycle) {
  Collection c;
  ASSERT_TRUE(Create("life", 0, 0, &c).ok());
  EXPECT_GT(c.dimension(), 0);  // asked the engine
  EXPECT_EQ(c.metric(), DISTANCE_METRIC_COSINE);
  EXPECT_EQ(c.chunking().chunk_tokens(), 256);
  EXPECT_EQ(c.hnsw().m(), 16);
  EXPECT_EQ(Create("life").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(Upsert("life", {Doc("a", "The little dog ran to the park."), Doc("b", "A cat sat on the mat.")}).ok());
  Collection got = Get("life");
  EXPECT_EQ(got.document_count(), 2);
  EXPECT_EQ(got.chunk_count(), 2);
  EXPECT_GT(got.size_bytes(), 0);
  ListCollectionsResponse list;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->ListCollections(ctx.get(), ListCollectionsRequest(), &list).ok());
  bool found = false;
  for (const auto& x : list.collections()) found |= x.name() == "life";
  EXPECT_TRUE(found);
  DeleteCollectionRequest del;
  del.set_name("life");
  DeleteCollectionResponse dr;
  auto ctx2 = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->DeleteCollection(ctx2.get(), del, &dr).ok());
  QueryResponse qr;
  EXPECT_EQ(Query("life", "dog", RETRIEVAL_MODE_LEXICAL, 5, &qr).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(RagServiceTest, ErrorsAreMapped) {
  EXPECT_EQ(Create("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  QueryResponse qr;
  EXPECT_EQ(Query("no-such", "x", RETRIEVAL_MODE_LEXICAL, 5, &qr).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Create("errs").ok());
  ASSERT_TRUE(Upsert("errs", {Doc("a", "Once upon a time there was a frog.")}).ok());
  for (int k : {-1, 101}) EXPECT_EQ(Query("errs", "frog", RETRIEVAL_MODE_HYBRID, k, &qr).error_code(),
                                    grpc::StatusCode::INVALID_ARGUMENT) << k;
  auto st = Query("errs", "frog", RETRIEVAL_MODE_HYBRID, 5, &qr, {Filter("", {"x"})});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(st.error_message().empty());
  EXPECT_EQ(Upsert("errs", {Doc("", "text")}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A collection whose dimension the model does not produce.
  ASSERT_TRUE(Create("errs7", 7).ok());
  st = Upsert("errs7", {Doc("a", "Once upon a time.")});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("dimension"), std::string::npos) << st.error_message();
  // The next valid request still succeeds.
  EXPECT_TRUE(Query("errs", "frog", RETRIEVAL_MODE_HYBRID, 5, &qr).ok());
  EXPECT_EQ(qr.results_size(), 1);
}

TEST_F(RagServiceTest, EngineDownIsUnavailable) {
  // A second rag on its own directory, pointed at a port nobody listens on.
  std::string dir = MakeTempDir("rag-noengine");
  auto svc = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-rag",
                          {"--data-dir", dir, "--engine", "127.0.0.1:1", "--tokenizer", tokenizer_->address(),
                           "--embed-attempts", "2"});
  ASSERT_TRUE(svc.ok()) << svc.status();
  ASSERT_TRUE(WaitForServing(svc->address(), absl::Seconds(30)).ok());
  auto stub = RagService::NewStub(rpc::CreateChannel(svc->address()));
  CreateCollectionRequest req;
  req.set_name("x");
  req.set_embedding_model(kModel);
  Collection c;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(20));
  EXPECT_EQ(stub->CreateCollection(ctx.get(), req, &c).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(RagServiceTest, FiltersAndDeleteAcrossBothIndexes) {
  ASSERT_TRUE(Create("filt").ok());
  std::vector<Document> docs;
  for (int i = 0; i < 12; ++i)
    docs.push_back(Doc(absl::StrCat("d", i), absl::StrCat("The shiny robot number ", i, " sings a happy song."),
                       {{"color", i % 3 == 0 ? "red" : (i % 3 == 1 ? "green" : "blue")}, {"n", absl::StrCat(i)}}));
  ASSERT_TRUE(Upsert("filt", docs).ok());
  for (auto mode : {RETRIEVAL_MODE_DENSE, RETRIEVAL_MODE_LEXICAL, RETRIEVAL_MODE_HYBRID}) {
    QueryResponse qr;
    ASSERT_TRUE(Query("filt", "robot song", mode, 100, &qr, {Filter("color", {"red", "blue"})}).ok());
    EXPECT_EQ(qr.results_size(), 8) << mode;
    for (const auto& r : qr.results()) EXPECT_NE(r.metadata().at("color"), "green");
    ASSERT_TRUE(Query("filt", "robot song", mode, 100, &qr, {Filter("color", {"red"}), Filter("n", {"3", "4"})}).ok());
    ASSERT_EQ(qr.results_size(), 1) << mode;
    EXPECT_EQ(qr.results(0).document_id(), "d3");
    EXPECT_EQ(qr.results(0).source(), "test://d3");
  }
  DeleteDocumentsRequest del;
  del.set_collection("filt");
  del.add_ids("d3");
  del.add_ids("d4");
  DeleteDocumentsResponse dr;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->DeleteDocuments(ctx.get(), del, &dr).ok());
  EXPECT_EQ(dr.deleted(), 2);
  for (auto mode : {RETRIEVAL_MODE_DENSE, RETRIEVAL_MODE_LEXICAL, RETRIEVAL_MODE_HYBRID}) {
    QueryResponse qr;
    ASSERT_TRUE(Query("filt", "The shiny robot number 3 sings a happy song.", mode, 100, &qr).ok());
    EXPECT_EQ(qr.results_size(), 10) << mode;
    for (const auto& r : qr.results()) EXPECT_TRUE(r.document_id() != "d3" && r.document_id() != "d4");
  }
  EXPECT_EQ(Get("filt").document_count(), 10);
}

TEST_F(RagServiceTest, MarkdownAndLongDocumentsAreChunkedByTokens) {
  ASSERT_TRUE(Create("md", 0, 64).ok());
  std::string md = "# Frogs\n";
  for (int i = 0; i < 30; ++i) absl::StrAppend(&md, "The green frog number ", i, " jumped into the pond. ");
  absl::StrAppend(&md, "\n\n# Birds\nThe **blue** bird sang in the [tall](http://x) tree.\n");
  Document d = Doc("md1", md);
  d.set_format(DOCUMENT_FORMAT_MARKDOWN);
  UpsertRequest req;
  req.set_collection("md");
  *req.add_documents() = d;
  UpsertResponse resp;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(60));
  ASSERT_TRUE(stub_->Upsert(ctx.get(), req, &resp).ok());
  EXPECT_GT(resp.chunks(), 4);
  QueryResponse qr;
  ASSERT_TRUE(Query("md", "bird tree", RETRIEVAL_MODE_LEXICAL, 1, &qr).ok());
  ASSERT_EQ(qr.results_size(), 1);
  EXPECT_EQ(qr.results(0).text(), "Birds\n\nThe blue bird sang in the tall tree.");
}

// ---- retrieval quality ------------------------------------------------------

// A deterministic labelled corpus: 30 topics x 10 passages. Each passage mixes
// its topic's words with two "detail" words shared by few passages; each query
// names a passage's details and some topic words, plus words the passage
// lacks, so lexical ranking is good but not perfect.
struct Corpus {
  std::vector<std::pair<std::string, std::string>> passages;      // id, text
  std::vector<std::pair<std::string, std::string>> queries;       // text, relevant id
};

Corpus MakeCorpus() {
  const std::vector<std::vector<std::string>> topics = {
      {"volcano", "lava", "magma", "eruption", "crater", "ash"},
      {"glacier", "ice", "crevasse", "moraine", "snowfield", "thaw"},
      {"bakery", "bread", "dough", "oven", "yeast", "crust"},
      {"rocket", "orbit", "launch", "fuel", "booster", "payload"},
      {"garden", "tomato", "compost", "seedling", "trellis", "weeds"},
      {"violin", "bow", "string", "concerto", "orchestra", "rosin"},
      {"chess", "bishop", "knight", "gambit", "checkmate", "pawn"},
      {"river", "delta", "current", "estuary", "flood", "bank"},
      {"castle", "moat", "tower", "drawbridge", "siege", "knight"},
      {"coffee", "espresso", "bean", "roast", "grinder", "crema"},
      {"bicycle", "pedal", "chain", "gear", "saddle", "spoke"},
      {"whale", "ocean", "krill", "pod", "migration", "blowhole"},
      {"desert", "dune", "cactus", "oasis", "sandstorm", "camel"},
      {"library", "book", "shelf", "catalog", "librarian", "archive"},
      {"forest", "oak", "canopy", "moss", "fern", "woodpecker"},
      {"train", "rail", "station", "locomotive", "carriage", "timetable"},
      {"pirate", "ship", "treasure", "parrot", "cannon", "anchor"},
      {"bee", "hive", "honey", "pollen", "queen", "nectar"},
      {"robot", "sensor", "motor", "circuit", "servo", "battery"},
      {"soccer", "goal", "referee", "penalty", "striker", "stadium"},
      {"painter", "canvas", "brush", "palette", "easel", "portrait"},
      {"storm", "thunder", "lightning", "hail", "gust", "cloud"},
      {"cheese", "cheddar", "milk", "curd", "aging", "rind"},
      {"telescope", "lens", "galaxy", "nebula", "mirror", "star"},
      {"kitchen", "knife", "pan", "stove", "recipe", "spoon"},
      {"mountain", "summit", "ridge", "climber", "rope", "peak"},
      {"hospital", "nurse", "doctor", "ward", "surgery", "patient"},
      {"farm", "tractor", "barn", "cow", "harvest", "silo"},
      {"island", "beach", "coral", "lagoon", "palm", "reef"},
      {"market", "stall", "vendor", "fruit", "price", "basket"}};
  const std::vector<std::string> details = {
      "amber", "silver", "crimson", "ancient", "hollow", "frozen", "velvet", "rusty", "gentle", "noisy",
      "golden", "purple", "narrow", "wooden", "glass", "bright", "quiet", "heavy", "tiny", "giant",
      "northern", "southern", "secret", "broken", "sleepy", "brave", "clever", "muddy", "windy", "sunny",
      "copper", "marble", "paper", "stone", "iron", "cotton", "silk", "crystal", "plastic", "feathered"};
  const std::vector<std::string> filler = {"people", "often", "talk", "about", "the", "place", "every", "day",
                                           "and", "many", "visitors", "come", "to", "see", "it"};
  uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  Corpus c;
  for (size_t t = 0; t < topics.size(); ++t) {
    for (int j = 0; j < 10; ++j) {
      const auto& tw = topics[t];
      std::string d1 = details[next() % details.size()], d2 = details[next() % details.size()];
      std::string w1 = tw[next() % tw.size()], w2 = tw[next() % tw.size()], w3 = tw[next() % tw.size()];
      std::string f1 = filler[next() % filler.size()], f2 = filler[next() % filler.size()];
      std::string id = absl::StrCat("t", t, "p", j);
      std::string text = absl::StrCat("The ", d1, " ", w1, " stood beside the ", w2, ". ", "A ", d2, " ", w3,
                                      " was there too, and ", f1, " ", f2, " of the ", tw[0], ".");
      c.passages.emplace_back(id, text);
      if (j % 2 == 0) {  // 150 queries
        std::string other = topics[(t + 7) % topics.size()][next() % 6];
        c.queries.emplace_back(absl::StrCat("where is the ", d1, " ", w1, " with a ", d2, " ", other, "?"), id);
      }
    }
  }
  return c;
}

TEST_F(RagServiceTest, RecallAt5OfEveryMode) {
  Collection created;
  ASSERT_TRUE(Create("quality", 0, 0, &created, kBowModel).ok());
  EXPECT_EQ(created.dimension(), 384);
  Corpus corpus = MakeCorpus();
  std::vector<Document> batch;
  for (const auto& [id, text] : corpus.passages) {
    batch.push_back(Doc(id, text));
    if (batch.size() == 50) {
      ASSERT_TRUE(Upsert("quality", batch).ok());
      batch.clear();
    }
  }
  ASSERT_EQ(Get("quality").document_count(), static_cast<int64_t>(corpus.passages.size()));
  std::map<RetrievalMode, int> hits, firsts;
  std::map<RetrievalMode, double> rr;  // reciprocal rank within the top 5
  for (auto mode : {RETRIEVAL_MODE_DENSE, RETRIEVAL_MODE_LEXICAL, RETRIEVAL_MODE_HYBRID}) {
    for (const auto& [q, relevant] : corpus.queries) {
      QueryResponse qr;
      ASSERT_TRUE(Query("quality", q, mode, 5, &qr).ok());
      for (int i = 0; i < qr.results_size(); ++i) {
        if (qr.results(i).document_id() != relevant) continue;
        hits[mode] += 1;
        firsts[mode] += i == 0;
        rr[mode] += 1.0 / (i + 1);
      }
    }
  }
  double n = static_cast<double>(corpus.queries.size());
  double dense = hits[RETRIEVAL_MODE_DENSE] / n, lexical = hits[RETRIEVAL_MODE_LEXICAL] / n,
         hybrid = hits[RETRIEVAL_MODE_HYBRID] / n;
  std::printf("recall@5 over %zu queries, %zu passages: dense %.3f  lexical %.3f  hybrid %.3f\n",
              corpus.queries.size(), corpus.passages.size(), dense, lexical, hybrid);
  std::printf("recall@1: dense %.3f  lexical %.3f  hybrid %.3f;  MRR@5: dense %.3f  lexical %.3f  hybrid %.3f\n",
              firsts[RETRIEVAL_MODE_DENSE] / n, firsts[RETRIEVAL_MODE_LEXICAL] / n, firsts[RETRIEVAL_MODE_HYBRID] / n,
              rr[RETRIEVAL_MODE_DENSE] / n, rr[RETRIEVAL_MODE_LEXICAL] / n, rr[RETRIEVAL_MODE_HYBRID] / n);
  RecordProperty("recall5_dense", absl::StrCat(dense));
  RecordProperty("recall5_lexical", absl::StrCat(lexical));
  RecordProperty("recall5_hybrid", absl::StrCat(hybrid));
  // Measured (bag-of-words embedder, 2026-11): recall@5 dense 1.000, lexical
  // 1.000, hybrid 1.000; at rank 1 hybrid (0.973) trails lexical (0.993):
  // the dense votes of an untrained embedder still reorder a few top hits.
  EXPECT_GE(lexical, 0.9);
  EXPECT_GE(dense, 0.9);     // the embedder carries real signal
  EXPECT_GE(hybrid, dense);  // fusion lifts the weaker retriever
  EXPECT_GE(hybrid, lexical);  // the bar
}

// ---- consistency and durability ----------------------------------------------

TEST_F(RagServiceTest, QueriesSeeWholeUpsertsDuringIngest) {
  ASSERT_TRUE(Create("conc").ok());
  std::atomic<bool> done{false};
  std::atomic<int> violations{0}, queries{0};
  std::thread writer([&] {
    for (int b = 0; b < 25; ++b) {
      std::vector<Document> docs;
      for (int d = 0; d < 4; ++d)
        docs.push_back(Doc(absl::StrCat("b", b, "d", d), absl::StrCat("batch", b, "tag the fox jumps ", d, ".")));
      EXPECT_TRUE(Upsert("conc", docs).ok());
    }
    done = true;
  });
  std::thread reader([&] {
    for (int b = 0; !done; ++b) {
      QueryResponse qr;
      if (!Query("conc", absl::StrCat("batch", b % 25, "tag"), RETRIEVAL_MODE_LEXICAL, 10, &qr).ok()) {
        ++violations;
        continue;
      }
      if (qr.results_size() != 0 && qr.results_size() != 4) ++violations;
      Collection c = Get("conc");
      if (c.document_count() % 4 != 0 || c.chunk_count() != c.document_count()) ++violations;
      ++queries;
    }
  });
  writer.join();
  reader.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(queries.load(), 0);
  EXPECT_EQ(Get("conc").document_count(), 100);
}

TEST_F(RagServiceTest, SigkillDuringIngestLosesNothingAcknowledged) {
  ASSERT_TRUE(Create("crash").ok());
  std::set<int> acked;
  int next_id = 0;
  int in_doubt = 0;  // upserts cut off by the kill: committed or not, never acknowledged
  // Two rounds: the second kill comes after index saves (--save-interval 1s),
  // so recovery goes through the watermark path as well as a full rebuild.
  for (int round = 0; round < 2; ++round) {
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      while (!stop) {
        int id = next_id++;
        std::string text = absl::StrCat("Document uniq", id, "tok tells of a small bird. It flew over the hill ",
                                        "and sang to the sun all day long.");
        if (!Upsert("crash", {Doc(absl::StrCat("doc", id), text)}, absl::Seconds(60)).ok()) break;
        std::lock_guard lock(mu);
        acked.insert(id);
      }
    });
    // Kill on progress, not on a clock (a loaded machine may ack few upserts
    // in a fixed time): at least 10 more acknowledged upserts, and in round 1
    // an index save (its sidecar rewritten) after this round began.
    const std::string meta = *data_dir_ + "/collections/crash/dense.hnsw.meta";
    auto meta_stamp = [&] {
      std::error_code ec;
      auto t = std::filesystem::last_write_time(meta, ec);
      return ec ? std::filesystem::file_time_type::min() : t;
    };
    const auto meta_before = meta_stamp();
    size_t acked_before;
    {
      std::lock_guard lock(mu);
      acked_before = acked.size();
    }
    for (absl::Time deadline = absl::Now() + absl::Seconds(120); absl::Now() < deadline;) {
      absl::SleepFor(absl::Milliseconds(50));
      size_t n;
      {
        std::lock_guard lock(mu);
        n = acked.size();
      }
      if (n >= acked_before + 10 && (round == 0 || meta_stamp() > meta_before)) break;
    }
    if (round == 1) {
      EXPECT_GT(meta_stamp(), meta_before) << "no index save seen before the kill";
    }
    ::kill(rag_->process->pid(), SIGKILL);
    stop = true;
    writer.join();
    ++in_doubt;
    ASSERT_GT(acked.size(), 5u) << "round " << round;
    StartRag();
    int64_t count = Get("crash").document_count();
    EXPECT_GE(count, static_cast<int64_t>(acked.size()));
    EXPECT_LE(count, static_cast<int64_t>(acked.size()) + in_doubt);
    int missing = 0;
    for (int id : acked) {
      QueryResponse qr;
      ASSERT_TRUE(Query("crash", absl::StrCat("uniq", id, "tok"), RETRIEVAL_MODE_LEXICAL, 1, &qr).ok());
      if (qr.results_size() != 1 || qr.results(0).document_id() != absl::StrCat("doc", id)) ++missing;
    }
    EXPECT_EQ(missing, 0) << "round " << round << ": " << acked.size() << " acknowledged";
    // The dense index holds every stored chunk too.
    QueryResponse qr;
    ASSERT_TRUE(Query("crash", "a small bird flew over the hill", RETRIEVAL_MODE_DENSE, 100, &qr).ok());
    EXPECT_EQ(qr.results_size(), std::min<int64_t>(100, count));
    Collection c = Get("crash");
    EXPECT_EQ(c.chunk_count(), c.document_count());
    std::printf("round %d: %zu acknowledged, %lld stored after restart\n", round, acked.size(),
                static_cast<long long>(count));
  }
}

}  // namespace
}  // namespace llmesh::testing
