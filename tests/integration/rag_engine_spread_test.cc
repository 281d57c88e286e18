// rag-svc's embeddings spread over every engine worker the gateway routes to,
// as real processes on 127.0.0.1: two self-registered engines share an
// ingest's Embed calls, a third added later gets its share, and a worker
// killed mid-stack costs no ingest.
#include <signal.h>

#include <gtest/gtest.h>

#include "gateway_stack.h"
#include "llmesh/v1/rag.grpc.pb.h"

namespace llmesh::testing {
namespace {

using namespace llmesh::v1;

int64_t EmbedCalls(const Service& engine) {
  auto stub = EngineService::NewStub(rpc::CreateChannel(engine.address()));
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(5));
  EngineStats stats;
  grpc::Status s = stub->GetStats(ctx.get(), GetStatsRequest(), &stats);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return stats.embed_requests_total();
}

// The live workers the gateway lists to rag-svc.
absl::Status WaitListed(const GatewayStack& stack, int n) {
  auto stub = WorkerRegistry::NewStub(rpc::CreateChannel(stack.gateway.address()));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int got = -1;
  while (absl::Now() < deadline) {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(5));
    ListWorkersResponse resp;
    if (stub->ListWorkers(ctx.get(), ListWorkersRequest(), &resp).ok()) {
      got = resp.workers_size();
      if (got == n) return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("gateway lists ", got, " workers, want ", n));
}

// `n` documents of a few sentences each, ids prefixed `prefix`.
UpsertRequest Docs(const std::string& collection, const std::string& prefix, int n) {
  UpsertRequest req;
  req.set_collection(collection);
  for (int i = 0; i < n; ++i) {
    Document* d = req.add_documents();
    d->set_id(absl::StrCat(prefix, i));
    std::string text;
    for (int s = 0; s < 6; ++s)
      absl::StrAppend(&text, "Document ", prefix, i, " sentence ", s, " tells of a cat, a dog and a boat. ");
    d->set_text(text);
  }
  return req;
}

class RagEngineSpreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stack_.Start({}).ok());
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(stack_.AddEngine().ok());
    ASSERT_TRUE(WaitListed(stack_, 2).ok());
    // Small chunks and one chunk per Embed call: an ingest makes many calls.
    auto rag = StartService(Bin("llmesh-rag"),
                            {"--data-dir", MakeTempDir("rag-spread"), "--gateway", stack_.gateway.address(),
                             "--tokenizer", stack_.tokenizer.address(), "--engine-refresh", "200ms",
                             "--embed-batch", "1", "--chunk-tokens", "32", "--overlap-tokens", "0",
                             "--log-level", "info"});
    ASSERT_TRUE(rag.ok()) << rag.status();
    rag_ = std::move(*rag);
    ASSERT_TRUE(WaitForServing(rag_.address(), absl::Seconds(30)).ok());
    stub_ = RagService::NewStub(rpc::CreateChannel(rag_.address()));
    CreateCollectionRequest req;
    req.set_name("spread");
    req.set_embedding_model("stories260K");
    Collection c;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
    grpc::Status s = stub_->CreateCollection(ctx.get(), req, &c);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  void Ingest(const std::string& prefix, int n) {
    UpsertResponse resp;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(120));
    grpc::Status s = stub_->Upsert(ctx.get(), Docs("spread", prefix, n), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::vector<int64_t> Calls() {
    std::vector<int64_t> out;
    for (const auto& e : stack_.engines) out.push_back(e->process->running() ? EmbedCalls(*e) : 0);
    return out;
  }

  GatewayStack stack_;
  Service rag_;
  std::unique_ptr<RagService::Stub> stub_;
};

TEST_F(RagEngineSpreadTest, EmbeddingsSpreadOverWorkersAndFollowScaling) {
  Ingest("a", 8);
  std::vector<int64_t> calls = Calls();
  const int64_t total = calls[0] + calls[1];
  std::printf("event=embed_spread workers=2 calls=%lld,%lld\n", static_cast<long long>(calls[0]),
              static_cast<long long>(calls[1]));
  ASSERT_GE(total, 16) << "the ingest should need many Embed calls";
  // Sequential calls alternate: each worker takes about half.
  EXPECT_GE(calls[0], total / 4);
  EXPECT_GE(calls[1], total / 4);

  // Scale up: the new worker registers, rag-svc sees it within a refresh.
  ASSERT_TRUE(stack_.AddEngine().ok());
  ASSERT_TRUE(WaitListed(stack_, 3).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const std::vector<int64_t> before = Calls();
  Ingest("b", 8);
  calls = Calls();
  std::printf("event=embed_spread workers=3 calls=%lld,%lld,%lld\n",
              static_cast<long long>(calls[0] - before[0]), static_cast<long long>(calls[1] - before[1]),
              static_cast<long long>(calls[2] - before[2]));
  EXPECT_GE(calls[2], (calls[0] + calls[1] + calls[2] - before[0] - before[1]) / 6)
      << "the added worker took too few embeddings";
  EXPECT_GT(calls[0], before[0]);
  EXPECT_GT(calls[1], before[1]);
}

TEST_F(RagEngineSpreadTest, KilledWorkerFailsOver) {
  // SIGKILL: no deregistration; the gateway and rag-svc still list it for a
  // moment, and Embed calls that go to it get UNAVAILABLE and move on.
  stack_.engines[0]->process->Signal(SIGKILL);
  const int64_t survivor_before = EmbedCalls(*stack_.engines[1]);
  Ingest("c", 4);
  EXPECT_GT(EmbedCalls(*stack_.engines[1]), survivor_before);
}

}  // namespace
}  // namespace llmesh::testing
