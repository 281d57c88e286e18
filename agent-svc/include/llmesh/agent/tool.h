// What an agent can call. A tool has a spec (name, description, JSON Schema of
// its arguments object: the engine's grammar makes the model's arguments
// valid against it) and a Call that turns arguments into an observation.
//
// A failing tool is not a failed run: Call's error becomes the observation the
// model sees next (TOOL_RESULT with tool_error). Calls must return by
// ctx.deadline and should return early on ctx.cancel; the loop also treats a
// result that comes back late as a timeout.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "llmesh/agent/cancellation.h"
#include "llmesh/v1/agent.pb.h"

namespace llmesh::agent {

struct ToolContext {
  absl::Time deadline = absl::InfiniteFuture();
  const Cancellation* cancel = nullptr;  // never null when the loop calls
  std::string call_id;                   // "call_3": unique within the session
  std::string request_id;                // for logs and downstream metadata
};

class Tool {
 public:
  virtual ~Tool() = default;
  // name, description, parameters_json_schema (a schema of type "object"),
  // and address for remote tools.
  virtual const v1::ToolSpec& spec() const = 0;
  // `arguments_json` is a JSON object (the loop parsed it). The output is the
  // text the model reads (often JSON).
  virtual absl::StatusOr<std::string> Call(const std::string& arguments_json, const ToolContext& ctx) = 0;
};

// Checks a spec any tool must satisfy: name [a-zA-Z0-9_-]{1,64}, a
// description of at most 4 KiB, and a parameters schema that is a JSON object
// of type "object" (at most 64 KiB). INVALID_ARGUMENT naming what is wrong.
absl::Status ValidateToolSpec(const v1::ToolSpec& spec);

// `text` cut to at most `max_bytes` on a UTF-8 character boundary, with
// " [truncated]" appended when something was cut: tool output and retrieved
// chunks are bounded before they reach the prompt.
std::string TruncateUtf8(const std::string& text, size_t max_bytes);

}  // namespace llmesh::agent
