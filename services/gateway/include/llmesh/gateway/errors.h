// Status -> HTTP, done once: validation 400, auth 401, not found 404,
// overload 429, dependency failure 502/503, deadline 504; and the error body
// OpenAI clients parse: {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace llmesh::gateway {

int HttpStatusOf(absl::StatusCode code);
// OpenAI's error `type` for the status ("invalid_request_error", ...).
std::string OpenAiErrorType(absl::StatusCode code);
// The JSON body; `param` names the offending field when known ("" -> null).
std::string OpenAiErrorBody(const absl::Status& status, const std::string& param = "");

}  // namespace llmesh::gateway
