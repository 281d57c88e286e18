// Every decoder family served: `llmesh up` on a model directory holding that
// family's ../shared/arch file answers a streamed chat through the gateway's
// OpenAI HTTP API, token by token, greedy, exactly max_tokens long.
#include <httplib.h>

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "launcher_stack.h"

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
                                           "olmo3", "granite", "smollm3", "exaone4"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace llmesh::testing
