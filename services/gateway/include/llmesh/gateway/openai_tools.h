// The OpenAI request fields that constrain output, parsed into a GenerateJob:
//   response_format  {type: text | json_object | json_schema, json_schema: {name, schema, strict}}
//   json_schema      (llama.cpp's name; an object) — both routes
//   tools, tool_choice, parallel_tool_calls (chat; see tool_calls.h)
// and an assistant message's tool_calls, turned back into the text the model
// wrote for them. Schemas are compiled here, so a bad one is a 400 naming the
// field before any engine work. The body is read with ordered_json: a
// schema's properties keep their declared order, which the output follows.
// Values are moved or dumped from the body parsed once, never parsed again.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/gateway/job.h"
#include "nlohmann/json.hpp"

namespace llmesh::gateway {

// `body` is the parsed request body, a JSON object. On error, *param names
// the field. `chat`: response_format and tools are chat fields.
absl::Status ParseConstraintFields(const nlohmann::ordered_json& body, bool chat, GenerateJob* job,
                                   std::string* param);

// `tool_calls` of an assistant message (an array) as the call objects the
// model writes, one per line: {"name": ..., "arguments": {...}}.
absl::StatusOr<std::string> ToolCallsAsText(const nlohmann::ordered_json& tool_calls);

}  // namespace llmesh::gateway
