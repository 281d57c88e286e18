// Each turn's prompt kept within the model's context. A run's history grows
// by a model turn and an observation per step, and a tool's output alone
// (up to max_tool_output_bytes) can outgrow a small model's window; left
// alone, later turns overflow it. FitPrompt gives up, in order, until the
// prompt fits:
//   1. the session's messages from earlier runs, oldest first;
//   2. this run's oldest steps (a model turn with its observation), never
//      the latest; the task then says how many steps and which tools;
//   3. the length of the longest observations left, halved each time down
//      to a useful size; then the latest model turn (its observation names
//      the tool); then the observations' length down to the bone.
// The system message and the run's task always stay.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/v1/common.pb.h"

namespace llmesh::agent {

// Tokens of the prompt `messages` render to (LlmBackend::CountPromptTokens).
using PromptCounter = std::function<absl::StatusOr<int32_t>(const std::vector<v1::ChatMessage>&)>;

struct FittedPrompt {
  std::vector<v1::ChatMessage> messages;  // as BuildPrompt makes them
  int32_t tokens = 0;
  size_t dropped = 0;       // history messages left out
  size_t observations_cut = 0;
};

// BuildPrompt(system_message, history, max_history) within `budget` tokens.
// `task` is the index in `history` of this run's input. The counter's error
// as it came; OUT_OF_RANGE when the system message and the task alone do
// not fit.
absl::StatusOr<FittedPrompt> FitPrompt(const std::string& system_message, const std::vector<v1::ChatMessage>& history,
                                       size_t task, size_t max_history, int32_t budget, const PromptCounter& count);

}  // namespace llmesh::agent
