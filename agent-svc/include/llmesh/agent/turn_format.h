// What one model turn may say, as a JSON Schema the engine compiles into a
// grammar, and how the loop reads it back:
//   a tool call     {"thought": "...", "tool": "calculator", "arguments": {...}}
//   a final answer  {"final_answer": "..."}
// The schema is a oneOf with one branch per allowed tool (its "tool" a const,
// its "arguments" the tool's own parameters schema) plus the answer branch
// when an answer is allowed (a lone branch is the schema itself). Branches
// are "$defs" named "turn:<i>" that the oneOf refers to. The engine's JSON
// Schema compiler writes properties in declared order, so a turn is
// thought, tool, arguments. Tool schemas' "$defs"/"definitions" are moved to
// the root under "<tool>.<name>" and their "$ref"s rewritten, so refs keep
// resolving.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/v1/agent.pb.h"

namespace llmesh::agent {

inline constexpr int kMaxThoughtChars = 400;

// INVALID_ARGUMENT when a tool's parameters schema is not a JSON object, or
// when nothing is allowed (no tools and no answer).
absl::StatusOr<std::string> BuildTurnSchema(const std::vector<v1::ToolSpec>& tools, bool allow_answer);

struct Turn {
  bool is_answer = false;
  std::string answer;          // is_answer
  std::string thought;         // tool call: may be empty
  std::string tool;            // tool call
  std::string arguments_json;  // tool call: the arguments object, compact JSON
};

// Reads a turn the model wrote. INVALID_ARGUMENT (with what is wrong) when it
// is not one of the allowed shapes: not JSON, an unknown or disallowed tool,
// arguments that are not an object, an answer where none is allowed.
absl::StatusOr<Turn> ParseTurn(const std::string& text, const std::vector<std::string>& allowed_tools,
                               bool allow_answer);

// The assistant message the loop stores for a turn (what the model wrote,
// re-serialised compactly).
std::string TurnToJson(const Turn& turn);

}  // namespace llmesh::agent
