// llmesh-engine as a real process on 127.0.0.1 with stories260K: golden
// greedy text, batched == alone, prefix reuse, cancellation, seeds, sessions,
// embeddings, health and errors.
#include <cmath>
#include <thread>

#include <gtest/gtest.h>

#include "llmesh/rpc/channel.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "service_process.h"

namespace llmesh::testing {
namespace {

using namespace llmesh::v1;

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};  // <s> Once upon a time
// ../shared/models/README.md: the greedy continuation, 64 tokens.
const std::vector<int32_t> kGolden = {
    432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322,
    265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267,
    337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310, 439, 419, 357, 336};

struct Result {
  grpc::Status status;
  std::vector<int32_t> tokens;
  FinishReason finish = FINISH_REASON_UNSPECIFIED;
  Usage usage;
};

class EngineServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto svc = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-engine",
                            {"--model-dir", std::string(LLMESH_SHARED_DIR) + "/models", "--model", "stories260K",
                             "--threads", "2", "--kv-budget-mb", "16", "--max-seqs", "8"});
    ASSERT_TRUE(svc.ok()) << svc.status();
    service_ = new Service(std::move(*svc));
    ASSERT_TRUE(WaitForServing(service_->address(), absl::Seconds(30)).ok());
    stub_ = EngineService::NewStub(rpc::CreateChannel(service_->address())).release();
  }
  static void TearDownTestSuite() {
    delete stub_;
    delete service_;
  }

  static GenerateRequest Greedy(std::vector<int32_t> prompt, int max_tokens) {
    GenerateRequest req;
    req.set_model("stories260K");
    req.mutable_prompt_token_ids()->Assign(prompt.begin(), prompt.end());
    req.mutable_sampling()->set_temperature(0);
    req.mutable_stopping()->set_max_tokens(max_tokens);
    return req;
  }

  static Result Generate(const GenerateRequest& req) {
    Result r;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(60));
    auto reader = stub_->Generate(ctx.get(), req);
    GenerateResponse resp;
    while (reader->Read(&resp)) {
      for (const auto& t : resp.tokens()) r.tokens.push_back(t.token_id());
      if (resp.finish_reason() != FINISH_REASON_UNSPECIFIED) {
        r.finish = resp.finish_reason();
        r.usage = resp.usage();
      }
    }
    r.status = reader->Finish();
    return r;
  }

  static EngineStats Stats() {
    EngineStats s;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    EXPECT_TRUE(stub_->GetStats(ctx.get(), GetStatsRequest(), &s).ok());
    return s;
  }

  static inline Service* service_ = nullptr;
  static inline EngineService::Stub* stub_ = nullptr;
};

TEST_F(EngineServiceTest, GreedyGenerationMatchesThePublishedText) {
  Result r = Generate(Greedy(kPrompt, 64));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, kGolden);
  EXPECT_EQ(r.finish, FINISH_REASON_LENGTH);
  EXPECT_EQ(r.usage.prompt_tokens(), 5);
  EXPECT_EQ(r.usage.completion_tokens(), 64);
}

TEST_F(EngineServiceTest, PromptTextIsTokenizedByTheEngine) {
  GenerateRequest req = Greedy({}, 8);
  req.set_prompt_text("Once upon a time");
  Result r = Generate(req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, std::vector<int32_t>(kGolden.begin(), kGolden.begin() + 8));
}

TEST_F(EngineServiceTest, ConcurrentRequestsGiveExactlyTheirSoloTokens) {
  std::vector<std::vector<int32_t>> prompts = {
      {1, 403, 407, 261, 378}, {1, 261, 376, 298}, {1, 383, 286, 261, 376, 298, 315, 421}, {1, 432}, {1, 410, 408}};
  std::vector<Result> solo;
  for (const auto& p : prompts) solo.push_back(Generate(Greedy(p, 40)));
  std::vector<Result> together(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] { together[i] = Generate(Greedy(prompts[i], 40)); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(together[i].status.ok()) << together[i].status.error_message();
    EXPECT_EQ(together[i].tokens, solo[i].tokens) << "prompt " << i;
  }
}

TEST_F(EngineServiceTest, PrefixCacheHitGivesTheSameTokensAndShowsInStats) {
  // 40 prompt tokens: two full 16-position blocks to reuse.
  std::vector<int32_t> prompt = {1};
  prompt.insert(prompt.end(), kGolden.begin(), kGolden.begin() + 39);
  Result cold = Generate(Greedy(prompt, 16));
  ASSERT_TRUE(cold.status.ok());
  Result warm = Generate(Greedy(prompt, 16));
  ASSERT_TRUE(warm.status.ok());
  EXPECT_EQ(warm.tokens, cold.tokens);
  EXPECT_GE(warm.usage.cached_prompt_tokens(), 32);
  EXPECT_GT(Stats().prefix_hit_rate(), 0.0);
}

TEST_F(EngineServiceTest, CancellingMidStreamFreesTheSequenceAndItsBlocks) {
  GenerateRequest req = Greedy(kPrompt, 400);
  req.mutable_stopping()->set_ignore_eos(true);
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, req);
  GenerateResponse resp;
  int got = 0;
  while (got < 5 && reader->Read(&resp)) got += resp.tokens_size();
  ASSERT_GE(got, 5);
  ctx.TryCancel();
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  EngineStats s;
  do {
    s = Stats();
    if (s.running_sequences() == 0 && s.kv_blocks_used() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_EQ(s.running_sequences(), 0);
  EXPECT_EQ(s.kv_blocks_used(), 0);
}

TEST_F(EngineServiceTest, SameSeedSameTokensWhateverRunsAlongside) {
  GenerateRequest req = Greedy(kPrompt, 48);
  req.mutable_sampling()->set_temperature(0.9f);
  req.mutable_sampling()->set_top_p(0.95f);
  req.mutable_sampling()->set_seed(42);
  Result a = Generate(req);
  ASSERT_TRUE(a.status.ok());
  // Again, while other requests share the batch.
  std::vector<std::thread> noise;
  for (int i = 0; i < 3; ++i) noise.emplace_back([&, i] { Generate(Greedy({1, 261 + i}, 48)); });
  Result b = Generate(req);
  for (auto& t : noise) t.join();
  ASSERT_TRUE(b.status.ok());
  EXPECT_EQ(a.tokens, b.tokens);
  req.mutable_sampling()->set_seed(7);
  EXPECT_NE(Generate(req).tokens, a.tokens);
}

TEST_F(EngineServiceTest, NCompletionsShareThePromptAndAreIndexed) {
  GenerateRequest req = Greedy(kPrompt, 10);
  req.set_n(3);
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(60));
  auto reader = stub_->Generate(ctx.get(), req);
  std::map<int, std::vector<int32_t>> by_index;
  int finished = 0;
  GenerateResponse resp;
  while (reader->Read(&resp)) {
    for (const auto& t : resp.tokens()) by_index[resp.index()].push_back(t.token_id());
    if (resp.finish_reason() != FINISH_REASON_UNSPECIFIED) ++finished;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(finished, 3);
  for (int i = 0; i < 3; ++i)  // greedy: every completion is the golden one
    EXPECT_EQ(by_index[i], std::vector<int32_t>(kGolden.begin(), kGolden.begin() + 10)) << i;
}

TEST_F(EngineServiceTest, SessionPrefillThenDecodeFollowsTheGoldenText) {
  OpenSessionRequest open;
  open.set_model("stories260K");
  OpenSessionResponse opened;
  {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub_->OpenSession(ctx.get(), open, &opened).ok());
  }
  PrefillRequest pre;
  pre.set_session_id(opened.session_id());
  pre.mutable_token_ids()->Assign(kPrompt.begin(), kPrompt.end());
  pre.set_top_logprobs(5);
  PrefillResponse prefilled;
  {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub_->Prefill(ctx.get(), pre, &prefilled).ok());
  }
  EXPECT_EQ(prefilled.n_past(), 5);
  ASSERT_EQ(prefilled.top_logprobs_size(), 5);
  EXPECT_EQ(prefilled.top_logprobs(0).token_id(), 432);  // "," as in the README's table
  DecodeRequest dec;
  dec.set_session_id(opened.session_id());
  dec.mutable_sampling()->set_temperature(0);
  dec.set_n_tokens(12);
  DecodeResponse decoded;
  {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub_->Decode(ctx.get(), dec, &decoded).ok());
  }
  std::vector<int32_t> got;
  for (const auto& t : decoded.tokens()) got.push_back(t.token_id());
  EXPECT_EQ(got, std::vector<int32_t>(kGolden.begin(), kGolden.begin() + 12));
  EXPECT_EQ(decoded.n_past(), 17);
  CloseSessionRequest close;
  close.set_session_id(opened.session_id());
  CloseSessionResponse closed;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->CloseSession(ctx.get(), close, &closed).ok());
  auto ctx2 = rpc::ContextWithTimeout(absl::Seconds(10));
  EXPECT_EQ(stub_->Decode(ctx2.get(), dec, &decoded).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(EngineServiceTest, EmbeddingsAreUnitVectorsOfTheModelWidth) {
  EmbedRequest req;
  req.set_model("stories260K");
  req.add_texts("Once upon a time");
  req.add_texts("The cat sat on the mat.");
  EmbedResponse resp;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->Embed(ctx.get(), req, &resp).ok());
  ASSERT_EQ(resp.embeddings_size(), 2);
  EXPECT_EQ(resp.dimension(), 64);
  for (const auto& e : resp.embeddings()) {
    double norm = 0;
    for (float v : e.values()) norm += v * v;
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
  }
}

TEST_F(EngineServiceTest, BadRequestsAreRejectedWithAMessageAndTheNextOneWorks) {
  auto expect_invalid = [](const GenerateRequest& req, const std::string& needle) {
    Result r = Generate(req);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << needle;
    EXPECT_NE(r.status.error_message().find(needle), std::string::npos) << r.status.error_message();
  };
  expect_invalid(Greedy({1, -1}, 4), "outside the vocabulary");
  expect_invalid(Greedy({1, 512}, 4), "outside the vocabulary");
  expect_invalid(Greedy({}, 4), "prompt is empty");
  expect_invalid(Greedy(std::vector<int32_t>(600, 5), 4), "context holds");
  GenerateRequest nan = Greedy(kPrompt, 4);
  nan.mutable_sampling()->set_temperature(std::nanf(""));
  expect_invalid(nan, "temperature");
  GenerateRequest neg = Greedy(kPrompt, -3);
  expect_invalid(neg, "max_tokens");
  GenerateRequest top_p = Greedy(kPrompt, 4);
  top_p.mutable_sampling()->set_top_p(1.5f);
  expect_invalid(top_p, "top_p");
  GenerateRequest overflow = Greedy(kPrompt, 600);
  overflow.set_overflow(OVERFLOW_POLICY_REJECT);
  expect_invalid(overflow, "exceeds the context");

  GenerateRequest unknown = Greedy(kPrompt, 4);
  unknown.set_model("nope");
  EXPECT_EQ(Generate(unknown).status.error_code(), grpc::StatusCode::NOT_FOUND);

  LoadModelRequest load;
  load.set_model("../models/stories260K");
  LoadModelResponse loaded;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  EXPECT_EQ(stub_->LoadModel(ctx.get(), load, &loaded).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  Result ok = Generate(Greedy(kPrompt, 4));
  ASSERT_TRUE(ok.status.ok());
  EXPECT_EQ(ok.tokens, std::vector<int32_t>(kGolden.begin(), kGolden.begin() + 4));
}

TEST(EngineHealthTest, NotServingUntilAModelIsLoaded) {
  auto svc = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-engine",
                          {"--model-dir", std::string(LLMESH_SHARED_DIR) + "/models", "--kv-budget-mb", "8"});
  ASSERT_TRUE(svc.ok()) << svc.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(*HealthStatus(svc->address()), "NOT_SERVING");
  auto stub = EngineService::NewStub(rpc::CreateChannel(svc->address()));
  LoadModelRequest load;
  load.set_model("stories260K");
  LoadModelResponse loaded;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
  ASSERT_TRUE(stub->LoadModel(ctx.get(), load, &loaded).ok());
  EXPECT_EQ(loaded.model().n_vocab(), 512);
  EXPECT_EQ(loaded.model().architecture(), "llama");
  EXPECT_EQ(*HealthStatus(svc->address()), "SERVING");
}

}  // namespace
}  // namespace llmesh::testing
