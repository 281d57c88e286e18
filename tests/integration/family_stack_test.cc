// Every decoder family served: `llmesh up` on a model directory holding that
// family's ../shared/arch file answers a streamed chat through the gateway's
// OpenAI HTTP API, token by token, greedy, exactly max_tokens long.
#include <httplib.h>

#include <algorithm>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "launcher_stack.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/v1/engine.grpc.pb.h"

namespace llmesh::testing {
namespace {

class FamilyStack : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyStack, AnswersAStreamedChat) {
  const std::string model = GetParam() + "-f16";
  LauncherStack stack;
  stack.Write(LLMESH_ARCH_MODELS_DIR, /*engines=*/1, "", model);
  ASSERT_TRUE(stack.Start().ok()) << ReadFile(stack.log);

  httplib::Client http("127.0.0.1", stack.http_port);
  http.set_read_timeout(60);
  const nlohmann::json req = {{"model", model},
                              {"messages", {{{"role", "user"}, {"content", "Tell me about foxes."}}}},
                              {"max_tokens", 6},
                              {"temperature", 0},
                              {"stream", true}};
  auto res = http.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;

  int deltas = 0;
  bool done = false;
  std::string finish;
  for (absl::string_view line : absl::StrSplit(res->body, '\n')) {
    if (!absl::ConsumePrefix(&line, "data: ")) continue;
    if (line == "[DONE]") {
      done = true;
      continue;
    }
    const auto chunk = nlohmann::json::parse(line);
    ASSERT_EQ(chunk["model"], model);
    const auto& choice = chunk["choices"][0];
    if (choice["delta"].contains("content")) ++deltas;
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_TRUE(done) << res->body;
  // Random weights never pick EOS in 6 greedy steps on these prompts.
  EXPECT_EQ(finish, "length") << res->body;
  EXPECT_GE(deltas, 1) << res->body;
  EXPECT_EQ(stack.Stop().value_or(-1), 0) << ReadFile(stack.log);
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyStack,
                         ::testing::Values("qwen3", "gemma2", "gemma3", "phi3", "mistral3", "olmo2",
                                           "olmo3", "granite", "smollm3", "exaone4", "bitnet", "bitnet-scaled"),
                         [](const auto& info) {
                           std::string name = info.param;  // test names allow no '-'
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// A sliding-window family in a long session: GetStats shows the windowed
// pool's blocks bounded by the window while the full-context layers' blocks
// grow with the sequence.
TEST(FamilyStackWindow, GetStatsShowsTheWindowPoolBounded) {
  auto svc = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-engine",
                          {"--model-dir", LLMESH_ARCH_MODELS_DIR, "--model", "gemma2-f16", "--threads", "2",
                           "--kv-budget-mb", "32", "--max-seqs", "4"});
  ASSERT_TRUE(svc.ok()) << svc.status();
  ASSERT_TRUE(WaitForServing(svc->address(), absl::Seconds(30)).ok());
  auto stub = v1::EngineService::NewStub(rpc::CreateChannel(svc->address()));
  auto stats = [&] {
    v1::EngineStats s;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    EXPECT_TRUE(stub->GetStats(ctx.get(), v1::GetStatsRequest(), &s).ok());
    return s;
  };
  v1::OpenSessionRequest open;
  open.set_model("gemma2-f16");
  v1::OpenSessionResponse opened;
  {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub->OpenSession(ctx.get(), open, &opened).ok());
  }
  for (int round = 0; round < 3; ++round) {
    v1::PrefillRequest pre;
    pre.set_session_id(opened.session_id());
    for (int i = 0; i < 100; ++i) pre.add_token_ids(200 + (round * 100 + i) * 7 % 3000);
    v1::PrefillResponse prefilled;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
    auto st = stub->Prefill(ctx.get(), pre, &prefilled);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(prefilled.n_past(), 100 * (round + 1));
    // Stats are a snapshot the scheduler refreshes right after each step.
    v1::EngineStats s = stats();
    for (int i = 0; i < 200 && s.kv_blocks_used() < 100 * (round + 1) / s.kv_block_size(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      s = stats();
    }
    // Window 8 in blocks of kv_block_size: the window pool holds one or two
    // blocks whatever the length; the global layers hold every position.
    EXPECT_GT(s.kv_window_blocks_total(), 0);
    EXPECT_LE(s.kv_window_blocks_used(), 8 / s.kv_block_size() + 2) << round;
    EXPECT_GE(s.kv_blocks_used(), 100 * (round + 1) / s.kv_block_size()) << round;
  }
}

}  // namespace
}  // namespace llmesh::testing
