// Tool calling in chats (OpenAI `tools` / `tool_choice`, gateway.proto
// ChatRequest.tools), done with the engine's constrained decoding.
//
// A call is the JSON object {"name": <tool>, "arguments": {...}}: the tools'
// parameter schemas are combined into one JSON Schema (an anyOf over the
// tools, each branch fixing "name" with const) and compiled to a GBNF grammar
// here, so a bad schema is refused before any engine work. The engine then
// only samples tokens that keep the output inside that grammar, so a call
// that the engine finished (end of generation) always parses and validates.
//   required / a forced tool: the grammar is the call.
//   auto: root ::= call | ([^{] .*)?  — plain text, or, when the answer starts
//         with "{", a call (llama.cpp's lazy grammars trigger on a word; a
//         leading "{" is the trigger here).
// The tools are described to the model in the system message (the chat
// templates of tokenizer-svc know no tool syntax). One call per completion:
// parallel calls are not generated.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/gateway/job.h"
#include "llmesh/v1/gateway.pb.h"

namespace llmesh::gateway {

// OpenAI's rule for function names: [a-zA-Z0-9_-]{1,64}.
bool IsValidToolName(const std::string& name);

// The JSON Schema of one call to any of `tools` ({"name", "arguments"}); each
// tool's own $defs are moved to the root (renamed t<i>_<name>) so its $refs
// still resolve. INVALID_ARGUMENT naming the tool when its schema is not a
// JSON object.
absl::StatusOr<std::string> ToolCallSchema(const std::vector<v1::ToolSpec>& tools);

// Validates job->tools and job->tool_choice and, when a call is possible, sets
// the sampling grammar, describes the tools in the system message and fills
// tool_mode / tool_names. Runs once (tools_applied). INVALID_ARGUMENT naming
// the tool for a bad name, a duplicate, or a schema the compiler refuses; also
// when tools are combined with a grammar or json_schema of the request's own.
absl::Status ApplyTools(GenerateJob* job);

// The model's answer as a call to one of `names`; nullopt when it is not one
// (truncated, other text). The id is left for the caller.
std::optional<v1::ToolCall> ParseToolCall(std::string_view text, const std::vector<std::string>& names);

// One completion's text on its way out: decides whether it is a call.
// Text of a call is held back (it is returned as the call at the end);
// plain text passes straight through.
class ToolCallFilter {
 public:
  ToolCallFilter(ToolMode mode, std::vector<std::string> names);

  // Text to send on now; "" while the answer is, or may yet be, a call.
  std::string Push(std::string_view text);
  bool holding() const { return state_ != State::kText; }

  struct Final {
    std::string text;                    // what is left to send as text
    std::optional<v1::ToolCall> call;    // set: the completion is this call
  };
  // End of the completion; `tail` is the last text. A held answer that parses
  // as a call becomes the call, else it is returned as text.
  Final Finish(std::string_view tail);

 private:
  enum class State { kUndecided, kText, kCall };
  ToolMode mode_;
  std::vector<std::string> names_;
  State state_;
  std::string held_;
};

}  // namespace llmesh::gateway
