// The continuous-batching scheduler in-process on stories260K: batching,
// chunked prefill and preemption never change greedy tokens; limits and
// cancellation behave.
#include "llmesh/engine/scheduler.h"

#include <condition_variable>
#include <thread>

#include <gtest/gtest.h>

namespace llmesh::engine {
namespace {

class CollectSink : public GenerationSink {
 public:
  void OnToken(int32_t, const SampleResult& t) override {
    std::lock_guard lock(mu_);
    tokens.push_back(t.token);
  }
  void OnFinish(int32_t, FinishReason r, const GenerationUsage& u, const std::string& e) override {
    std::lock_guard lock(mu_);
    reason = r;
    usage = u;
    error = e;
    done = true;
    cv_.notify_all();
  }
  bool Wait(absl::Duration timeout = absl::Seconds(60)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return done; });
  }
  std::vector<int32_t> tokens;
  FinishReason reason = FinishReason::kNone;
  GenerationUsage usage;
  std::string error;
  bool done = false;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = Model::Load(std::string(LLMESH_SHARED_DIR) + "/models/stories260K.gguf");
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = m->release();
  }
  static void TearDownTestSuite() { delete model_; }

  std::unique_ptr<Scheduler> Make(SchedulerConfig cfg) {
    auto s = Scheduler::Create(*model_, pool_, cfg);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static GenerationRequest Greedy(std::vector<int32_t> prompt, int max_tokens) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    return r;
  }

  // Greedy tokens of each prompt, all submitted at once to `s`.
  static std::vector<std::vector<int32_t>> RunAll(Scheduler& s, const std::vector<std::vector<int32_t>>& prompts,
                                                  int max_tokens) {
    std::vector<std::shared_ptr<CollectSink>> sinks;
    for (const auto& p : prompts) {
      auto sink = std::make_shared<CollectSink>();
      EXPECT_TRUE(s.Submit(Greedy(p, max_tokens), sink).ok());
      sinks.push_back(sink);
    }
    std::vector<std::vector<int32_t>> out;
    for (auto& sink : sinks) {
      EXPECT_TRUE(sink->Wait());
      EXPECT_EQ(sink->reason, FinishReason::kLength) << sink->error;
      out.push_back(sink->tokens);
    }
    return out;
  }

  static std::vector<std::vector<int32_t>> Prompts() {
    return {{1, 403, 407, 261, 378}, {1, 261, 376, 298, 315}, {1, 383, 286}, {1, 432, 410, 408, 419, 292, 411}};
  }

  static inline Model* model_ = nullptr;
  ThreadPool pool_{2};
};

TEST_F(SchedulerTest, BatchedEqualsOneAtATime) {
  SchedulerConfig cfg;
  auto s = Make(cfg);
  std::vector<std::vector<int32_t>> solo;
  for (const auto& p : Prompts()) solo.push_back(RunAll(*s, {p}, 60)[0]);
  EXPECT_EQ(RunAll(*s, Prompts(), 60), solo);
}

TEST_F(SchedulerTest, ChunkedPrefillGivesTheSameTokens) {
  std::vector<int32_t> long_prompt = {1};
  for (int i = 0; i < 100; ++i) long_prompt.push_back(260 + (i * 13) % 200);
  SchedulerConfig wide;
  auto a = Make(wide);
  SchedulerConfig narrow;
  narrow.max_seqs = 4;
  narrow.max_batch_tokens = 4;  // the 101-token prompt goes through in 26 steps
  auto b = Make(narrow);
  EXPECT_EQ(RunAll(*a, {long_prompt}, 20), RunAll(*b, {long_prompt}, 20));
}

TEST_F(SchedulerTest, PreemptionUnderKvPressureLosesNothingAndChangesNothing) {
  SchedulerConfig roomy;
  auto a = Make(roomy);
  auto expected = RunAll(*a, Prompts(), 200);
  // 5 layers x 16 positions x (32 + 32) floats x 4 bytes = 20 KiB per block;
  // 30 blocks hold 480 positions, while 4 sequences of ~205 need ~52 blocks.
  SchedulerConfig tight;
  tight.kv_budget_bytes = 30 * 20480;
  auto b = Make(tight);
  EXPECT_EQ(RunAll(*b, Prompts(), 200), expected);
}

TEST_F(SchedulerTest, FullQueueIsResourceExhaustedAndRecovers) {
  SchedulerConfig cfg;
  cfg.max_queue = 2;
  cfg.max_seqs = 1;
  auto s = Make(cfg);
  std::vector<std::shared_ptr<CollectSink>> sinks;
  int rejected = 0;
  for (int i = 0; i < 8; ++i) {
    auto sink = std::make_shared<CollectSink>();
    auto id = s->Submit(Greedy({1, 403}, 200), sink);
    if (id.ok()) {
      sinks.push_back(sink);
    } else {
      EXPECT_TRUE(absl::IsResourceExhausted(id.status())) << id.status();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  for (auto& sink : sinks) {
    ASSERT_TRUE(sink->Wait());
    EXPECT_EQ(sink->reason, FinishReason::kLength);  // every admitted request completes
  }
  auto again = std::make_shared<CollectSink>();
  ASSERT_TRUE(s->Submit(Greedy({1, 403}, 4), again).ok());
  ASSERT_TRUE(again->Wait());
}

TEST_F(SchedulerTest, CancelFreesBlocksWithinAStep) {
  auto s = Make(SchedulerConfig{});
  auto sink = std::make_shared<CollectSink>();
  auto id = s->Submit(Greedy({1, 403, 407}, 400), sink);
  ASSERT_TRUE(id.ok());
  while (true) {
    {
      if (s->Stats().tokens_generated_total >= 3) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  s->Cancel(*id);
  ASSERT_TRUE(sink->Wait());
  EXPECT_EQ(sink->reason, FinishReason::kCancelled);
  absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (s->Stats().kv.blocks_used != 0 && absl::Now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(s->Stats().kv.blocks_used, 0);
  EXPECT_EQ(s->Stats().running_sequences, 0);
}

TEST_F(SchedulerTest, ContextOverflowStopsWithLengthOrRejects) {
  SchedulerConfig cfg;
  cfg.n_ctx = 32;
  auto s = Make(cfg);
  auto sink = std::make_shared<CollectSink>();
  ASSERT_TRUE(s->Submit(Greedy({1, 403, 407, 261, 378}, 0), sink).ok());
  ASSERT_TRUE(sink->Wait());
  EXPECT_EQ(sink->reason, FinishReason::kLength);
  EXPECT_EQ(sink->tokens.size(), 27u);  // 5 + 27 = the 32-token context
  GenerationRequest reject = Greedy({1, 403, 407}, 40);
  reject.reject_overflow = true;
  auto st = s->Submit(reject, std::make_shared<CollectSink>());
  EXPECT_TRUE(absl::IsInvalidArgument(st.status()));
  EXPECT_TRUE(absl::IsInvalidArgument(s->Submit(Greedy(std::vector<int32_t>(32, 5), 1), nullptr).status()));
}

TEST_F(SchedulerTest, ShutdownFinishesEveryRequest) {
  auto s = Make(SchedulerConfig{});
  std::vector<std::shared_ptr<CollectSink>> sinks;
  for (int i = 0; i < 6; ++i) {
    auto sink = std::make_shared<CollectSink>();
    ASSERT_TRUE(s->Submit(Greedy({1, 403}, 500), sink).ok());
    sinks.push_back(sink);
  }
  s.reset();
  for (auto& sink : sinks) EXPECT_TRUE(sink->done);
}

}  // namespace
}  // namespace llmesh::engine
