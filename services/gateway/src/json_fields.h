// Request-body fields read without exceptions, for the HTTP routes' parsers
// (openai_json.cc, openai_tools.cc, rag_json.cc, agent_json.cc): a field's
// type is checked before use, and an error names the field in *param, the
// error body's "param". Json is nlohmann::json or nlohmann::ordered_json.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "llmesh/common/json_parse.h"

namespace llmesh::gateway::json_fields {

// INVALID_ARGUMENT with `msg`; *param (when given) names the field.
inline absl::Status Fail(std::string* param, const char* name, const std::string& msg) {
  if (param) *param = name;
  return absl::InvalidArgumentError(msg);
}

// obj[name]; nullptr when absent or null.
template <typename Json>
const Json* Get(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// A string field into *out when given.
template <typename Json>
absl::Status String(const Json& obj, const char* name, std::string* out, std::string* param) {
  const Json* v = Get(obj, name);
  if (!v) return absl::OkStatus();
  if (!v->is_string()) return Fail(param, name, absl::StrCat("'", name, "' must be a string"));
  *out = v->template get_ref<const std::string&>();
  return absl::OkStatus();
}

// A request body, which must be a JSON object, parsed once and bounded
// (llmesh/common/json_parse.h): nesting deeper than kMaxJsonDepth is refused.
template <typename Json>
absl::StatusOr<Json> ParseBody(const std::string& body, std::string* param) {
  auto j = ParseJson<Json>(body);
  if (!j.ok()) {
    if (param) *param = "";
    return absl::InvalidArgumentError(absl::StrCat("the request body is ", j.status().message()));
  }
  if (!j->is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  return j;
}

}  // namespace llmesh::gateway::json_fields
