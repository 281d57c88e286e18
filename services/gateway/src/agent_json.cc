#include "llmesh/gateway/agent_json.h"

#include "absl/strings/str_cat.h"
#include "json_fields.h"
#include "llmesh/gateway/openai_json.h"
#include "llmesh/gateway/tool_calls.h"
#include "nlohmann/json.hpp"

namespace llmesh::gateway {
namespace {

using json = nlohmann::ordered_json;  // fields come out in the order written

using json_fields::Fail;
using json_fields::Get;
using json_fields::String;

// A non-negative integer at most `hi`, into *out when given.
absl::Status Count(const json& obj, const char* name, int64_t hi, int64_t* out, std::string* param) {
  const json* v = Get(obj, name);
  if (!v) return absl::OkStatus();
  bool ok = v->is_number_integer();  // signed or unsigned
  if (ok && v->is_number_unsigned()) ok = v->get<uint64_t>() <= static_cast<uint64_t>(hi);
  else if (ok) ok = v->get<int64_t>() >= 0 && v->get<int64_t>() <= hi;
  if (!ok) return Fail(param, "limits", absl::StrCat("'limits.", name, "' must be an integer in [0, ", hi, "]"));
  *out = v->get<int64_t>();
  return absl::OkStatus();
}

json UsageJson(const v1::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens()},
          {"completion_tokens", u.completion_tokens()},
          {"total_tokens", u.total_tokens()}};
}

json StepObject(const v1::AgentStep& s) {
  json j = {{"object", "agent.step"}, {"kind", AgentStepKindName(s.kind())}, {"session_id", s.session_id()},
            {"step", s.step()}};
  if (!s.text().empty() || s.kind() == v1::AGENT_STEP_KIND_FINAL_ANSWER) j["text"] = s.text();
  if (!s.tool_name().empty()) j["tool_name"] = s.tool_name();
  if (!s.tool_call_id().empty()) j["tool_call_id"] = s.tool_call_id();
  if (s.kind() == v1::AGENT_STEP_KIND_TOOL_CALL) j["arguments"] = s.arguments_json();
  if (s.kind() == v1::AGENT_STEP_KIND_TOOL_RESULT) j["tool_error"] = s.tool_error();
  if (s.has_usage()) j["usage"] = UsageJson(s.usage());
  return j;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

absl::StatusOr<AgentRunHttpRequest> ParseAgentRunRequest(const std::string& body, std::string* param) {
  auto parsed = json_fields::ParseBody<json>(body, param);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  AgentRunHttpRequest out;
  v1::AgentRunRequest& run = out.run;
  std::string s;
  if (auto st = String(j, "model", &s, param); !st.ok()) return st;
  run.set_model(s);
  s.clear();
  if (!Get(j, "input")) return Fail(param, "input", "'input' is required");
  if (auto st = String(j, "input", &s, param); !st.ok()) return st;
  if (s.empty()) return Fail(param, "input", "'input' must not be empty");
  run.set_input(s);
  for (auto [name, field] : std::initializer_list<std::pair<const char*, std::string*>>{
           {"system_prompt", run.mutable_system_prompt()},
           {"session_id", run.mutable_session_id()},
           {"tool_choice", run.mutable_tool_choice()},
           {"rag_collection", run.mutable_rag_collection()}}) {
    if (auto st = String(j, name, field, param); !st.ok()) return st;
  }
  if (const json* tools = Get(j, "tools")) {
    if (!tools->is_array()) return Fail(param, "tools", "'tools' must be an array of tool names");
    for (const auto& t : *tools) {
      if (!t.is_string() || !IsValidToolName(t.get<std::string>()))
        return Fail(param, "tools", "'tools' must hold tool names ([a-zA-Z0-9_-]{1,64})");
      run.add_tools(t.get<std::string>());
    }
  }
  if (const json* lim = Get(j, "limits")) {
    if (!lim->is_object()) return Fail(param, "limits", "'limits' must be an object");
    int64_t v = -1;
    auto* l = run.mutable_limits();
    if (auto st = Count(*lim, "max_steps", 1 << 20, &v, param); !st.ok()) return st;
    if (v >= 0) l->set_max_steps(static_cast<int32_t>(v));
    v = -1;
    if (auto st = Count(*lim, "max_tokens", 1 << 24, &v, param); !st.ok()) return st;
    if (v >= 0) l->set_max_tokens(static_cast<int32_t>(v));
    v = -1;
    if (auto st = Count(*lim, "max_wall_ms", int64_t{1} << 40, &v, param); !st.ok()) return st;
    if (v >= 0) l->set_max_wall_ms(v);
    v = -1;
    if (auto st = Count(*lim, "tool_timeout_ms", int64_t{1} << 40, &v, param); !st.ok()) return st;
    if (v >= 0) l->set_tool_timeout_ms(v);
  }
  if (auto st = ParseSamplingFields(j, run.mutable_sampling(), param); !st.ok()) return st;
  if (const json* stream = Get(j, "stream")) {
    if (!stream->is_boolean()) return Fail(param, "stream", "'stream' must be a boolean");
    out.stream = stream->get<bool>();
  }
  return out;
}

const char* AgentStepKindName(v1::AgentStepKind kind) {
  switch (kind) {
    case v1::AGENT_STEP_KIND_THOUGHT: return "thought";
    case v1::AGENT_STEP_KIND_TOOL_CALL: return "tool_call";
    case v1::AGENT_STEP_KIND_TOOL_RESULT: return "tool_result";
    case v1::AGENT_STEP_KIND_FINAL_ANSWER: return "final_answer";
    case v1::AGENT_STEP_KIND_USAGE: return "usage";
    case v1::AGENT_STEP_KIND_ERROR: return "error";
    default: return "unspecified";
  }
}

std::string AgentStepJson(const v1::AgentStep& step) { return Dump(StepObject(step)); }

std::string AgentRunJson(const std::vector<v1::AgentStep>& steps) {
  json out = {{"object", "agent.run"}, {"session_id", ""}, {"steps", json::array()}, {"output", nullptr},
              {"usage", nullptr}};
  for (const auto& s : steps) {
    if (!s.session_id().empty()) out["session_id"] = s.session_id();
    if (s.kind() == v1::AGENT_STEP_KIND_FINAL_ANSWER) out["output"] = s.text();
    if (s.has_usage()) out["usage"] = UsageJson(s.usage());
    out["steps"].push_back(StepObject(s));
  }
  return Dump(out);
}

}  // namespace llmesh::gateway
