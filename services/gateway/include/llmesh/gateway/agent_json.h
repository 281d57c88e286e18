// HTTP JSON of POST /v1/agents/run (agent-svc Run through the gateway):
//   {model?, input, system_prompt?, tools?: [names], tool_choice?, session_id?,
//    rag_collection?, limits?: {max_steps, max_tokens, max_wall_ms, tool_timeout_ms},
//    temperature?, top_p?, seed?, ... (the generation routes' sampling fields),
//    stream?}
// stream: true answers Server-Sent Events, one "agent.step" object per step,
// ending "data: [DONE]"; otherwise one "agent.run" object with every step.
// An empty model is passed on as empty: agent-svc then takes the session's
// model, else its own default.
// Errors are INVALID_ARGUMENT with *param naming the field.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/v1/agent.pb.h"

namespace llmesh::gateway {

struct AgentRunHttpRequest {
  v1::AgentRunRequest run;
  bool stream = false;
};

absl::StatusOr<AgentRunHttpRequest> ParseAgentRunRequest(const std::string& body, std::string* param);

// "thought", "tool_call", "tool_result", "final_answer", "usage", "error".
const char* AgentStepKindName(v1::AgentStepKind kind);

// {"object": "agent.step", "kind", "session_id", "step", and the fields the kind uses}.
std::string AgentStepJson(const v1::AgentStep& step);
// {"object": "agent.run", "session_id", "steps": [...], "output": final answer text, "usage"}.
std::string AgentRunJson(const std::vector<v1::AgentStep>& steps);

}  // namespace llmesh::gateway
