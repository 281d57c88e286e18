// llmesh-engine as a real process serving a synthesized BERT encoder (bge's
// WordPiece vocabulary) beside stories260K: Embed over gRPC returns exactly
// the in-process BertForward vectors for every pooling, the model's default
// pooling comes from its file, generation on the encoder is refused, and the
// two models share the engine's threads while both are busy.
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "llmesh/engine/bert_forward.h"
#include "llmesh/engine/bert_synth.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/tokenizer/tokenizer.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "service_process.h"

namespace llmesh::testing {
namespace {

using namespace llmesh::v1;
namespace fs = std::filesystem;

constexpr char kBert[] = "bert-tiny";
// Same code, same weights, other thread count: every output element is still
// summed by one thread in one order, so the vectors agree to float rounding.
constexpr double kSameVectorTol = 1e-6;

const std::vector<std::string> kTexts = {"The quick brown fox jumps over the lazy dog.", "Hello world",
                                         "Embeddings find the passages that answer a question."};

class EngineBertServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("bert-models"));
    auto vocab = gguf::GgufFile::Open(std::string(LLMESH_SHARED_DIR) + "/tokenizer-vectors/ggml-vocab-bert-bge.gguf");
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    engine::BertSynthOptions o;
    o.shape = *engine::BertSynthShapeByName("tiny");
    o.type = gguf::GgmlType::kQ8_0;
    o.vocab = vocab->get();
    o.n_threads = 2;
    const std::string path = *dir_ + "/" + kBert + ".gguf";
    ASSERT_TRUE(engine::SynthesizeBertModel(o, path).ok());
    fs::create_symlink(std::string(LLMESH_SHARED_DIR) + "/models/stories260K.gguf", *dir_ + "/stories260K.gguf");
    auto m = engine::BertModel::Load(path);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = m->release();
    auto tok = tokenizer::Tokenizer::FromGguf(model_->file());
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = tok->release();

    auto svc = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-engine",
                            {"--model-dir", *dir_, "--model", std::string(kBert) + ",stories260K", "--threads", "2",
                             "--kv-budget-mb", "16"});
    ASSERT_TRUE(svc.ok()) << svc.status();
    service_ = new Service(std::move(*svc));
    ASSERT_TRUE(WaitForServing(service_->address(), absl::Seconds(30)).ok());
    stub_ = EngineService::NewStub(rpc::CreateChannel(service_->address())).release();
  }
  static void TearDownTestSuite() {
    delete stub_;
    delete service_;
    delete tokenizer_;
    delete model_;
    delete dir_;
  }

  static grpc::Status Embed(const std::vector<std::string>& texts, Pooling pooling, EmbedResponse* resp) {
    EmbedRequest req;
    req.set_model(kBert);
    for (const auto& t : texts) req.add_texts(t);
    req.set_pooling(pooling);
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
    return stub_->Embed(ctx.get(), req, resp);
  }

  // The in-process answer: the same tokenizer and forward pass.
  static std::vector<std::vector<float>> Local(const std::vector<std::string>& texts, engine::Pooling pooling) {
    std::vector<std::vector<int32_t>> seqs;
    for (const auto& t : texts) seqs.push_back(*tokenizer_->Encode(t, true, false));
    engine::ThreadPool pool(1);
    engine::BertForward fwd(*model_, pool);
    auto e = fwd.Embed(seqs, pooling);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : std::vector<std::vector<float>>{};
  }

  static void ExpectSame(const EmbedResponse& got, const std::vector<std::vector<float>>& want) {
    ASSERT_EQ(got.embeddings_size(), static_cast<int>(want.size()));
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got.embeddings(i).values_size(), static_cast<int>(want[i].size()));
      double diff = 0;
      for (size_t d = 0; d < want[i].size(); ++d)
        diff = std::max(diff, static_cast<double>(std::fabs(got.embeddings(i).values(d) - want[i][d])));
      EXPECT_LE(diff, kSameVectorTol) << "text " << i;
    }
  }

  static inline std::string* dir_ = nullptr;
  static inline engine::BertModel* model_ = nullptr;
  static inline tokenizer::Tokenizer* tokenizer_ = nullptr;
  static inline Service* service_ = nullptr;
  static inline EngineService::Stub* stub_ = nullptr;
};

TEST_F(EngineBertServiceTest, EmbedReturnsTheInProcessVectors) {
  for (auto [proto, local] : {std::pair{POOLING_MEAN, engine::Pooling::kMean},
                              std::pair{POOLING_CLS, engine::Pooling::kCls},
                              std::pair{POOLING_LAST, engine::Pooling::kLast},
                              // The file says mean (the tiny shape's pooling_type).
                              std::pair{POOLING_UNSPECIFIED, engine::Pooling::kMean}}) {
    EmbedResponse resp;
    grpc::Status s = Embed(kTexts, proto, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.dimension(), 256);
    ExpectSame(resp, Local(kTexts, local));
    int32_t total = 0;
    for (size_t i = 0; i < kTexts.size(); ++i) {
      const int32_t n = static_cast<int32_t>(tokenizer_->Encode(kTexts[i], true, false)->size());
      EXPECT_EQ(resp.embeddings(i).n_tokens(), n);
      total += n;
    }
    EXPECT_EQ(resp.usage().prompt_tokens(), total);
  }
  // Token ids in, as the rag service may send them.
  EmbedRequest req;
  req.set_model(kBert);
  auto ids = *tokenizer_->Encode(kTexts[0], true, false);
  req.add_inputs()->mutable_token_ids()->Assign(ids.begin(), ids.end());
  EmbedResponse resp;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
  ASSERT_TRUE(stub_->Embed(ctx.get(), req, &resp).ok());
  ExpectSame(resp, Local({kTexts[0]}, engine::Pooling::kMean));
}

TEST_F(EngineBertServiceTest, TheEncoderServesEmbedOnly) {
  GenerateRequest gen;
  gen.set_model(kBert);
  gen.add_prompt_token_ids(101);
  gen.mutable_stopping()->set_max_tokens(4);
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  auto reader = stub_->Generate(ctx.get(), gen);
  GenerateResponse r;
  while (reader->Read(&r)) {
  }
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find("Embed only"), std::string::npos) << s.error_message();

  OpenSessionRequest open;
  open.set_model(kBert);
  OpenSessionResponse opened;
  auto ctx2 = rpc::ContextWithTimeout(absl::Seconds(10));
  EXPECT_EQ(stub_->OpenSession(ctx2.get(), open, &opened).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  ListModelsRequest list;
  ListModelsResponse models;
  auto ctx3 = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->ListModels(ctx3.get(), list, &models).ok());
  bool found = false;
  for (const auto& m : models.models()) {
    if (m.name() != kBert) continue;
    found = true;
    EXPECT_EQ(m.architecture(), "bert");
    EXPECT_EQ(m.n_embd(), 256);
    EXPECT_EQ(m.n_ctx(), 64);
  }
  EXPECT_TRUE(found);
  EngineStats stats;
  auto ctx4 = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->GetStats(ctx4.get(), GetStatsRequest(), &stats).ok());
  EXPECT_EQ(stats.models_size(), 2);
}

TEST_F(EngineBertServiceTest, BadInputsAreRejectedAndTheNextRequestWorks) {
  EmbedResponse resp;
  std::string long_text;
  for (int i = 0; i < 80; ++i) long_text += "word ";
  grpc::Status s = Embed({long_text}, POOLING_MEAN, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("at most 64"), std::string::npos) << s.error_message();
  EmbedRequest bad;
  bad.set_model(kBert);
  bad.add_inputs()->add_token_ids(-1);
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  EXPECT_EQ(stub_->Embed(ctx.get(), bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EmbedResponse ok;
  ASSERT_TRUE(Embed(kTexts, POOLING_MEAN, &ok).ok());
  ExpectSame(ok, Local(kTexts, engine::Pooling::kMean));
}

// The encoder and the decoder share the engine's thread pool: both busy at
// once, each still gives its own answer.
TEST_F(EngineBertServiceTest, EncoderAndDecoderRunSideBySide) {
  std::atomic<int> embed_failures{0}, gen_failures{0};
  const auto want = Local(kTexts, engine::Pooling::kMean);
  std::thread embedder([&] {
    for (int i = 0; i < 20; ++i) {
      EmbedResponse resp;
      if (!Embed(kTexts, POOLING_MEAN, &resp).ok()) {
        ++embed_failures;
        continue;
      }
      for (size_t t = 0; t < want.size(); ++t)
        for (size_t d = 0; d < want[t].size(); ++d)
          if (std::fabs(resp.embeddings(t).values(d) - want[t][d]) > kSameVectorTol) ++embed_failures, d = want[t].size();
    }
  });
  for (int i = 0; i < 5; ++i) {
    GenerateRequest gen;
    gen.set_model("stories260K");
    for (int32_t t : {1, 403, 407, 261, 378}) gen.add_prompt_token_ids(t);
    gen.mutable_sampling()->set_temperature(0);
    gen.mutable_stopping()->set_max_tokens(32);
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
    auto reader = stub_->Generate(ctx.get(), gen);
    GenerateResponse r;
    int n = 0;
    while (reader->Read(&r)) n += r.tokens_size();
    if (!reader->Finish().ok() || n != 32) ++gen_failures;
  }
  embedder.join();
  EXPECT_EQ(embed_failures.load(), 0);
  EXPECT_EQ(gen_failures.load(), 0);
}

}  // namespace
}  // namespace llmesh::testing
