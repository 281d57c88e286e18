#include "llmesh/gateway/openai_tools.h"

#include "absl/strings/str_cat.h"
#include "json_fields.h"
#include "llmesh/common/json_parse.h"
#include "llmesh/engine/grammar.h"
#include "llmesh/gateway/tool_calls.h"
#include "nlohmann/json.hpp"

namespace llmesh::gateway {
namespace {

using OJson = nlohmann::ordered_json;

std::string Dump(const OJson& j) { return j.dump(-1, ' ', false, OJson::error_handler_t::replace); }

using json_fields::Fail;
using json_fields::Get;

// Compiles `schema` the way the engine will, so a bad one fails here.
absl::Status CheckSchema(const std::string& schema, std::string* param, const char* name, const std::string& where) {
  auto g = engine::JsonSchemaToGrammar(schema);
  if (!g.ok()) return Fail(param, name, absl::StrCat(where, ": ", g.status().message()));
  return absl::OkStatus();
}

absl::Status ParseResponseFormat(const OJson& body, GenerateJob* job, std::string* param) {
  const OJson* rf = Get(body, "response_format");
  if (!rf) return absl::OkStatus();
  const char* kName = "response_format";
  if (!rf->is_object()) return Fail(param, kName, "'response_format' must be an object");
  const OJson* type = Get(*rf, "type");
  if (!type || !type->is_string()) return Fail(param, kName, "'response_format.type' must be a string");
  const std::string& t = type->get_ref<const std::string&>();
  std::string schema;
  if (t == "text") {
    return absl::OkStatus();
  } else if (t == "json_object") {
    schema = R"({"type":"object"})";
  } else if (t == "json_schema") {
    const OJson* js = Get(*rf, "json_schema");
    if (!js || !js->is_object())
      return Fail(param, kName, "'response_format.json_schema' must be an object {name, schema, strict}");
    const OJson* name = Get(*js, "name");
    if (!name || !name->is_string() || !IsValidToolName(name->get<std::string>()))
      return Fail(param, kName, "'response_format.json_schema.name' must be a string matching [a-zA-Z0-9_-]{1,64}");
    const OJson* strict = Get(*js, "strict");
    if (strict && !strict->is_boolean())
      return Fail(param, kName, "'response_format.json_schema.strict' must be a boolean");
    const OJson* s = Get(*js, "schema");
    if (s && !s->is_object() && !s->is_boolean())
      return Fail(param, kName, "'response_format.json_schema.schema' must be a JSON Schema object");
    schema = s ? Dump(*s) : "{}";  // no schema: any JSON value
  } else {
    return Fail(param, kName, absl::StrCat("'response_format.type' must be 'text', 'json_object' or 'json_schema'; got '",
                                           t, "'"));
  }
  if (!job->sampling.grammar().empty() || !job->sampling.json_schema().empty())
    return Fail(param, kName, "'response_format' cannot be combined with 'grammar' or 'json_schema'");
  if (auto st = CheckSchema(schema, param, kName, "response_format"); !st.ok()) return st;
  job->sampling.set_json_schema(std::move(schema));
  return absl::OkStatus();
}

absl::Status ParseTools(const OJson& body, GenerateJob* job, std::string* param) {
  if (const OJson* tools = Get(body, "tools")) {
    if (!tools->is_array()) return Fail(param, "tools", "'tools' must be an array");
    for (size_t i = 0; i < tools->size(); ++i) {
      const OJson& t = (*tools)[i];
      std::string at = absl::StrCat("tools[", i, "]");
      if (!t.is_object()) return Fail(param, "tools", absl::StrCat("'", at, "' must be an object"));
      const OJson* type = Get(t, "type");
      if (!type || !type->is_string() || type->get<std::string>() != "function")
        return Fail(param, "tools", absl::StrCat("'", at, ".type' must be 'function'"));
      const OJson* fn = Get(t, "function");
      if (!fn || !fn->is_object()) return Fail(param, "tools", absl::StrCat("'", at, ".function' must be an object"));
      const OJson* name = Get(*fn, "name");
      if (!name || !name->is_string()) return Fail(param, "tools", absl::StrCat("'", at, ".function.name' must be a string"));
      const OJson* desc = Get(*fn, "description");
      if (desc && !desc->is_string())
        return Fail(param, "tools", absl::StrCat("'", at, ".function.description' must be a string"));
      const OJson* params = Get(*fn, "parameters");
      if (params && !params->is_object())
        return Fail(param, "tools", absl::StrCat("'", at, ".function.parameters' must be a JSON Schema object"));
      const OJson* strict = Get(*fn, "strict");
      if (strict && !strict->is_boolean())
        return Fail(param, "tools", absl::StrCat("'", at, ".function.strict' must be a boolean"));
      v1::ToolSpec spec;
      spec.set_name(name->get<std::string>());
      if (desc) spec.set_description(desc->get<std::string>());
      if (params) spec.set_parameters_json_schema(Dump(*params));
      job->tools.push_back(std::move(spec));
    }
  }
  if (const OJson* choice = Get(body, "tool_choice")) {
    if (choice->is_string()) {
      const std::string& c = choice->get_ref<const std::string&>();
      if (c != "none" && c != "auto" && c != "required")
        return Fail(param, "tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or {type: 'function', function: {name}}");
      job->tool_choice = c;
    } else if (choice->is_object()) {
      const OJson* type = Get(*choice, "type");
      const OJson* fn = Get(*choice, "function");
      const OJson* name = fn && fn->is_object() ? Get(*fn, "name") : nullptr;
      if (!type || !type->is_string() || type->get<std::string>() != "function" || !name || !name->is_string())
        return Fail(param, "tool_choice", "'tool_choice' object must be {type: 'function', function: {name}}");
      const std::string& n = name->get_ref<const std::string&>();
      if (n == "none" || n == "auto" || n == "required")
        return Fail(param, "tool_choice", absl::StrCat("a tool named '", n, "' cannot be forced"));
      job->tool_choice = n;
    } else {
      return Fail(param, "tool_choice", "'tool_choice' must be a string or an object");
    }
  }
  if (const OJson* p = Get(body, "parallel_tool_calls"); p && !p->is_boolean())
    return Fail(param, "parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
  absl::Status st = ApplyTools(job);
  if (!st.ok()) {
    bool about_choice = st.message().rfind("tool_choice", 0) == 0;
    return Fail(param, about_choice ? "tool_choice" : "tools", std::string(st.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseConstraintFields(const OJson& j, bool chat, GenerateJob* job, std::string* param) {
  if (!j.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  if (const OJson* js = Get(j, "json_schema")) {
    if (!js->is_object() && !js->is_boolean()) return Fail(param, "json_schema", "'json_schema' must be a JSON Schema object");
    if (!job->sampling.grammar().empty())
      return Fail(param, "json_schema", "'json_schema' and 'grammar' cannot be used together");
    std::string schema = Dump(*js);
    if (auto st = CheckSchema(schema, param, "json_schema", "json_schema"); !st.ok()) return st;
    job->sampling.set_json_schema(std::move(schema));
  }
  if (!chat) return absl::OkStatus();
  if (auto st = ParseResponseFormat(j, job, param); !st.ok()) return st;
  return ParseTools(j, job, param);
}

absl::StatusOr<std::string> ToolCallsAsText(const OJson& calls) {
  if (!calls.is_array()) return absl::InvalidArgumentError("tool_calls must be an array");
  std::string out;
  for (const auto& c : calls) {
    const OJson* fn = c.is_object() ? Get(c, "function") : nullptr;
    const OJson* name = fn && fn->is_object() ? Get(*fn, "name") : nullptr;
    if (!name || !name->is_string())
      return absl::InvalidArgumentError("each tool call must be {type: 'function', function: {name, arguments}}");
    OJson call = OJson::object();
    call["name"] = *name;
    OJson& args = call["arguments"] = OJson::object();
    if (const OJson* a = Get(*fn, "arguments")) {
      if (!a->is_string()) return absl::InvalidArgumentError("tool call arguments must be a string of JSON");
      auto parsed = ParseJson<OJson>(a->get_ref<const std::string&>());
      args = parsed.ok() ? std::move(*parsed) : *a;  // not JSON: kept as the model wrote it
    }
    absl::StrAppend(&out, out.empty() ? "" : "\n", Dump(call));
  }
  return out;
}

}  // namespace llmesh::gateway
