#include "llmesh/gateway/tool_calls.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "llmesh/common/json_parse.h"
#include "llmesh/engine/grammar.h"
#include "nlohmann/json.hpp"

namespace llmesh::gateway {
namespace {

// ordered_json: properties keep their declared order, which is the order the
// grammar writes them in.
using OJson = nlohmann::ordered_json;

absl::Status Bad(const std::string& msg) { return absl::InvalidArgumentError(msg); }

std::string Dump(const OJson& j) { return j.dump(-1, ' ', false, OJson::error_handler_t::replace); }

// A tool without parameters takes the empty object.
constexpr char kNoParameters[] = R"({"type":"object","properties":{},"additionalProperties":false})";

std::string ParametersOf(const v1::ToolSpec& tool) {
  return tool.parameters_json_schema().empty() ? kNoParameters : tool.parameters_json_schema();
}

// Points every local $ref of one tool's schema at its hoisted copy.
void RewriteRefs(OJson& s, const std::string& prefix) {
  if (s.is_array()) {
    for (auto& e : s) RewriteRefs(e, prefix);
    return;
  }
  if (!s.is_object()) return;
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (it.key() == "$ref" && it->is_string()) {
      const std::string ref = it->get<std::string>();
      for (const char* local : {"#/$defs/", "#/definitions/"}) {
        if (ref.rfind(local, 0) == 0) {
          *it = absl::StrCat("#/$defs/", prefix, ref.substr(std::string(local).size()));
          break;
        }
      }
      continue;
    }
    RewriteRefs(*it, prefix);
  }
}

// The system-message text that tells the model what it may call and how.
std::string ToolsPrompt(const std::vector<v1::ToolSpec>& tools, ToolMode mode) {
  std::string out =
      "You can call these tools. To call one, answer with nothing but a JSON object "
      "{\"name\": <tool name>, \"arguments\": <an object matching its parameters>}.";
  if (mode == ToolMode::kAuto) out += " When no tool is needed, answer in plain text.";
  out += "\nTools:";
  for (const auto& t : tools) {
    absl::StrAppend(&out, "\n- ", t.name());
    if (!t.description().empty()) absl::StrAppend(&out, ": ", t.description());
    absl::StrAppend(&out, "\n  parameters: ", ParametersOf(t));
  }
  return out;
}

}  // namespace

bool IsValidToolName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

absl::StatusOr<std::string> ToolCallSchema(const std::vector<v1::ToolSpec>& tools) {
  if (tools.empty()) return Bad("no tools to call");
  OJson branches = OJson::array();
  OJson defs = OJson::object();
  for (size_t i = 0; i < tools.size(); ++i) {
    auto parsed = ParseJson<OJson>(ParametersOf(tools[i]));
    if (!parsed.ok() || !parsed->is_object())
      return Bad(absl::StrCat("tool '", tools[i].name(), "': parameters must be a JSON Schema object"));
    OJson params = std::move(*parsed);
    const std::string prefix = absl::StrCat("t", i, "_");
    RewriteRefs(params, prefix);
    for (const char* section : {"$defs", "definitions"}) {
      auto it = params.find(section);
      if (it == params.end()) continue;
      if (!it->is_object())
        return Bad(absl::StrCat("tool '", tools[i].name(), "': parameters.", section, " must be an object"));
      for (auto d = it->begin(); d != it->end(); ++d) defs[prefix + d.key()] = *d;
      params.erase(it);
    }
    OJson branch = {{"type", "object"},
                    {"properties", {{"name", {{"const", tools[i].name()}}}, {"arguments", std::move(params)}}},
                    {"required", {"name", "arguments"}},
                    {"additionalProperties", false}};
    branches.push_back(std::move(branch));
  }
  OJson root = branches.size() == 1 ? branches[0] : OJson{{"anyOf", std::move(branches)}};
  if (!defs.empty()) root["$defs"] = std::move(defs);
  return Dump(root);
}

absl::Status ApplyTools(GenerateJob* job) {
  if (job->tools_applied) return absl::OkStatus();
  job->tools_applied = true;
  const std::string& choice = job->tool_choice;
  if (job->tools.empty()) {
    if (!choice.empty() && choice != "none" && choice != "auto")
      return Bad(absl::StrCat("tool_choice '", choice, "' needs tools"));
    return absl::OkStatus();
  }
  if (job->tools.size() > 128) return Bad("at most 128 tools");
  std::set<std::string> names;
  for (size_t i = 0; i < job->tools.size(); ++i) {
    const std::string& name = job->tools[i].name();
    if (!IsValidToolName(name))
      return Bad(absl::StrCat("tools[", i, "]: name '", name, "' must match [a-zA-Z0-9_-]{1,64}"));
    if (!names.insert(name).second) return Bad(absl::StrCat("tools[", i, "]: the name '", name, "' is used twice"));
  }
  if (choice == "none") return absl::OkStatus();

  std::vector<size_t> callable;
  ToolMode mode = ToolMode::kAuto;
  if (choice.empty() || choice == "auto" || choice == "required") {
    if (choice == "required") mode = ToolMode::kRequired;
    for (size_t i = 0; i < job->tools.size(); ++i) callable.push_back(i);
  } else {
    mode = ToolMode::kRequired;
    for (size_t i = 0; i < job->tools.size(); ++i)
      if (job->tools[i].name() == choice) callable.push_back(i);
    if (callable.empty())
      return Bad(absl::StrCat("tool_choice names '", choice, "', which is not one of the tools"));
  }
  if (!job->sampling.grammar().empty() || !job->sampling.json_schema().empty())
    return Bad("tools cannot be combined with a grammar or json_schema (response_format) of the request's own");

  // Each tool alone first, so an error names the tool that caused it.
  std::vector<v1::ToolSpec> tools;
  for (size_t i : callable) {
    const v1::ToolSpec& t = job->tools[i];
    auto own = engine::JsonSchemaToGrammar(ParametersOf(t));
    if (!own.ok())
      return Bad(absl::StrCat("tools[", i, "] ('", t.name(), "'): parameters: ", own.status().message()));
    tools.push_back(t);
  }
  auto schema = ToolCallSchema(tools);
  if (!schema.ok()) return schema.status();
  auto gbnf = engine::JsonSchemaToGrammar(*schema);
  if (!gbnf.ok()) return Bad(absl::StrCat("tools: ", gbnf.status().message()));
  std::string grammar = std::move(*gbnf);
  if (mode == ToolMode::kAuto) {
    // The compiler writes "root ::= ..." first and never refers to root.
    constexpr std::string_view kRoot = "root ::= ";
    if (grammar.rfind(kRoot, 0) != 0) return absl::InternalError("unexpected grammar from the JSON Schema compiler");
    grammar = absl::StrCat("root ::= tool-call | ([^{] .*)?\ntool-call ::= ", grammar.substr(kRoot.size()));
  }
  if (auto parsed = engine::Grammar::Parse(grammar); !parsed.ok())
    return Bad(absl::StrCat("tools: ", parsed.status().message()));
  job->sampling.set_grammar(std::move(grammar));
  job->tool_mode = mode;
  job->tool_names.clear();
  for (const auto& t : tools) job->tool_names.push_back(t.name());
  AddToSystemMessage(&job->messages, ToolsPrompt(tools, mode));
  return absl::OkStatus();
}

std::optional<v1::ToolCall> ParseToolCall(std::string_view text, const std::vector<std::string>& names) {
  OJson j = OJson::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto name = j.find("name");
  auto args = j.find("arguments");
  if (name == j.end() || !name->is_string() || args == j.end() || !args->is_object()) return std::nullopt;
  const std::string& n = name->get_ref<const std::string&>();
  bool known = false;
  for (const auto& allowed : names) known = known || allowed == n;
  if (!known) return std::nullopt;
  v1::ToolCall call;
  call.set_name(n);
  call.set_arguments_json(Dump(*args));
  return call;
}

ToolCallFilter::ToolCallFilter(ToolMode mode, std::vector<std::string> names)
    : mode_(mode), names_(std::move(names)), state_(mode == ToolMode::kRequired ? State::kCall : State::kUndecided) {
  if (mode == ToolMode::kNone) state_ = State::kText;
}

std::string ToolCallFilter::Push(std::string_view text) {
  if (state_ == State::kUndecided) {
    if (text.empty()) return "";
    state_ = text[0] == '{' ? State::kCall : State::kText;
  }
  if (state_ == State::kText) return std::string(text);
  held_.append(text);
  return "";
}

ToolCallFilter::Final ToolCallFilter::Finish(std::string_view tail) {
  Final out;
  if (state_ == State::kUndecided && !tail.empty() && mode_ == ToolMode::kAuto)
    state_ = tail[0] == '{' ? State::kCall : State::kText;
  if (state_ != State::kCall) {
    out.text = std::string(tail);
    return out;
  }
  held_.append(tail);
  out.call = ParseToolCall(held_, names_);
  if (!out.call) out.text = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace llmesh::gateway
