// Worker failure through the gateway: two self-registered engine workers; one
// is SIGKILLed during a run of requests. Requests streaming from it end with a
// clear UNAVAILABLE error, every other request succeeds (retried on the other
// worker before the first token), later requests avoid the dead worker, and a
// restarted worker rejoins. SIGTERM deregisters a worker before it drains.
#include <signal.h>

#include <atomic>
#include <mutex>

#include <gtest/gtest.h>

#include "gateway_stack.h"

namespace llmesh::testing {
namespace {

using namespace llmesh::v1;

struct Outcome {
  grpc::Status status;
  int tokens = 0;
  std::string text;
};

Outcome Generate(GatewayStack& stack, int max_tokens) {
  GatewayGenerateRequest req;
  req.set_model("stories260K");
  req.set_prompt("Once upon a time");
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_max_tokens(max_tokens);
  req.mutable_stopping()->set_ignore_eos(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stack.stub->Generate(&ctx, req);
  GatewayGenerateResponse r;
  Outcome o;
  while (reader->Read(&r)) {
    o.tokens += r.tokens_size();
    o.text += r.text_delta();
  }
  o.status = reader->Finish();
  return o;
}

TEST(GatewayFailoverTest, KilledWorkerFailsOnlyItsStreamsAndRejoinsWhenRestarted) {
  GatewayStack stack;
  // This gateway detokenizes in-process (it sees the model directory).
  ASSERT_TRUE(stack.Start({"--model-dir", ModelDir()}).ok());
  ASSERT_TRUE(stack.AddEngine().ok());
  ASSERT_TRUE(stack.AddEngine().ok());
  ASSERT_TRUE(stack.WaitForWorkers(2).ok());

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Outcome> outcomes;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        Outcome o = Generate(stack, 400);
        std::lock_guard lock(mu);
        outcomes.push_back(o);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  stack.engines[0]->process->Signal(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop.store(true);
  for (auto& t : clients) t.join();

  int failed = 0;
  for (const auto& o : outcomes) {
    if (o.status.ok()) {
      EXPECT_EQ(o.tokens, 400);
      continue;
    }
    ++failed;
    // Only streams cut mid-way by the dead worker may fail, and they say so.
    EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE) << o.status.error_message();
    EXPECT_NE(o.status.error_message().find("failed mid-stream"), std::string::npos) << o.status.error_message();
    EXPECT_GT(o.tokens, 0);
  }
  std::printf("requests during the run: %zu, cut mid-stream by the kill: %d\n", outcomes.size(), failed);
  EXPECT_LE(failed, 4);  // at most the streams in flight on it
  EXPECT_GT(outcomes.size(), static_cast<size_t>(failed));

  // Later requests all succeed, on the surviving worker.
  for (int i = 0; i < 8; ++i) {
    Outcome o = Generate(stack, 32);
    EXPECT_TRUE(o.status.ok()) << o.status.error_message();
  }
  ASSERT_TRUE(stack.WaitForWorkers(1).ok());

  // Restarted, it registers again and takes traffic.
  ASSERT_TRUE(stack.AddEngine().ok());
  ASSERT_TRUE(stack.WaitForWorkers(2).ok());
  int64_t before = EngineStatsOf(stack.engines.back()->address()).requests_total();
  for (int i = 0; i < 8; ++i) {
    std::vector<std::thread> burst;
    for (int k = 0; k < 2; ++k) burst.emplace_back([&] { EXPECT_TRUE(Generate(stack, 64).status.ok()); });
    for (auto& t : burst) t.join();
  }
  EXPECT_GT(EngineStatsOf(stack.engines.back()->address()).requests_total(), before);

  // SIGTERM: the worker deregisters before draining; the gateway stops routing to it.
  stack.engines[1]->process->Signal(SIGTERM);
  ASSERT_TRUE(stack.WaitForWorkers(1, "", absl::Seconds(5)).ok());
  auto code = stack.engines[1]->process->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(Generate(stack, 16).status.ok());
}

// Workers from a static list and from a DNS name; a NOT_SERVING worker (no
// model loaded) in the list gets no traffic.
TEST(GatewayDiscoveryTest, StaticListAndDnsNameFindWorkers) {
  auto serving = StartService(Bin("llmesh-engine"), {"--model-dir", ModelDir(), "--model", "stories260K", "--threads",
                                                     "1", "--kv-budget-mb", "16", "--log-level", "warn"});
  ASSERT_TRUE(serving.ok()) << serving.status();
  auto empty = StartService(Bin("llmesh-engine"), {"--model-dir", ModelDir(), "--kv-budget-mb", "16"});
  ASSERT_TRUE(empty.ok()) << empty.status();
  ASSERT_TRUE(WaitForServing(serving->address(), absl::Seconds(30)).ok());
  EXPECT_EQ(*HealthStatus(empty->address()), "NOT_SERVING");

  GatewayStack by_list;  // detokenizes in-process
  ASSERT_TRUE(by_list.Start({"--workers", serving->address() + "," + empty->address(), "--model-dir", ModelDir()}).ok());
  ASSERT_TRUE(by_list.WaitForWorkers(1).ok());
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(Generate(by_list, 16).status.ok());
  EXPECT_EQ(EngineStatsOf(empty->address()).requests_total(), 0);

  GatewayStack by_dns;
  ASSERT_TRUE(by_dns.Start({"--workers-dns", absl::StrCat("localhost:", serving->port)}).ok());
  ASSERT_TRUE(by_dns.WaitForWorkers(1).ok());
  // Through tokenizer-svc DetokenizeStream: the same text as in-process.
  Outcome remote = Generate(by_dns, 64), local = Generate(by_list, 64);
  ASSERT_TRUE(remote.status.ok());
  ASSERT_TRUE(local.status.ok());
  EXPECT_FALSE(remote.text.empty());
  EXPECT_EQ(remote.text, local.text);
}

}  // namespace
}  // namespace llmesh::testing
