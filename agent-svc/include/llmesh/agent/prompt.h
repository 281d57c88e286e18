// The conversation as the model reads it each turn. The session stores the
// real roles (user, assistant, tool); chat templates differ in what they
// accept (llama2 and mistral demand strict user/assistant alternation, most
// have no tool role), so the prompt uses only system/user/assistant:
//   system     the agent's system prompt + the tools and the reply format
//   user       the run's input, and each tool result as an observation
//   assistant  the model's earlier turns (their JSON)
// Consecutive messages of one role are merged, and the system message is the
// same on every turn of a run, so the engine's prefix cache reuses it.
#pragma once

#include <string>
#include <vector>

#include "llmesh/v1/agent.pb.h"

namespace llmesh::agent {

inline constexpr char kDefaultSystemPrompt[] = "You are a helpful assistant.";

// The tool's signature as the prompt shows it: "calculator(expression: string)".
std::string ToolSignature(const v1::ToolSpec& tool);

// The system message: `system_prompt` (or the default), then the tools and
// the reply format. `tools` are all the run may call, whichever turn it is.
std::string SystemMessage(const std::string& system_prompt, const std::vector<v1::ToolSpec>& tools);

// The tool message's text as the model reads it.
std::string Observation(const v1::ChatMessage& tool_message);

// The last `max_history` messages of `history` (less any assistant turns
// at the start, so no template sees one right after the system message),
// mapped and merged as above, after the system message.
std::vector<v1::ChatMessage> BuildPrompt(const std::string& system_message,
                                         const std::vector<v1::ChatMessage>& history, size_t max_history);

}  // namespace llmesh::agent
