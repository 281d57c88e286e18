#include "llmesh/agent/turn_format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace llmesh::agent {
namespace {

using Json = nlohmann::ordered_json;  // the compiler writes properties in this order

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Rewrites every "$ref" inside `node` that points at the tool's own
// definitions to their new home under the root's "$defs".
void RewriteRefs(Json& node, const std::string& tool) {
  if (node.is_object()) {
    for (auto& [key, value] : node.items()) {
      if (key == "$ref" && value.is_string()) {
        const std::string ref = value.get<std::string>();
        for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
          const std::string p = prefix;
          if (ref.rfind(p, 0) == 0) value = absl::StrCat("#/$defs/", tool, ".", ref.substr(p.size()));
        }
      } else {
        RewriteRefs(value, tool);
      }
    }
  } else if (node.is_array()) {
    for (auto& v : node) RewriteRefs(v, tool);
  }
}

Json StrictObject(Json properties, std::vector<std::string> required) {
  Json o = Json::object();
  o["type"] = "object";
  o["properties"] = std::move(properties);
  o["required"] = std::move(required);
  o["additionalProperties"] = false;
  return o;
}

}  // namespace

absl::StatusOr<std::string> BuildTurnSchema(const std::vector<v1::ToolSpec>& tools, bool allow_answer) {
  if (tools.empty() && !allow_answer) return absl::InvalidArgumentError("a turn must allow a tool or an answer");
  Json branches = Json::array();
  Json defs = Json::object();
  for (const auto& tool : tools) {
    Json params = Json::parse(tool.parameters_json_schema(), nullptr, /*allow_exceptions=*/false);
    if (params.is_discarded() || !params.is_object())
      return absl::InvalidArgumentError(absl::StrCat("tool '", tool.name(), "': parameters schema is not a JSON object"));
    for (const char* section : {"$defs", "definitions"}) {
      auto it = params.find(section);
      if (it == params.end()) continue;
      if (!it->is_object())
        return absl::InvalidArgumentError(absl::StrCat("tool '", tool.name(), "': ", section, " is not an object"));
      for (auto& [name, def] : it->items()) defs[absl::StrCat(tool.name(), ".", name)] = def;
      params.erase(it);
    }
    RewriteRefs(params, tool.name());
    for (auto& [name, def] : defs.items())
      if (name.rfind(tool.name() + ".", 0) == 0) RewriteRefs(def, tool.name());
    Json props = Json::object();
    props["thought"] = {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxThoughtChars}};
    props["tool"] = {{"const", tool.name()}};
    props["arguments"] = std::move(params);
    branches.push_back(StrictObject(std::move(props), {"thought", "tool", "arguments"}));
  }
  if (allow_answer) {
    Json props = Json::object();
    props["final_answer"] = {{"type", "string"}, {"minLength", 1}};
    branches.push_back(StrictObject(std::move(props), {"final_answer"}));
  }
  Json schema;
  if (branches.size() == 1) {
    schema = std::move(branches[0]);
  } else {
    // The branches live in $defs and the oneOf refers to them, so each is a
    // rule named after its def whatever the compiler calls inline branches
    // (engine builds before json_schema_test's AnyOfObjectsAtTheRoot... fix
    // named the renamed root rule "root-1", like its second branch, and
    // refused the grammar). "turn:<i>" cannot clash with a tool's
    // "<tool>.<name>": tool names have no ':'.
    Json refs = Json::array();
    for (size_t i = 0; i < branches.size(); ++i) {
      const std::string name = absl::StrCat("turn:", i);
      defs[name] = std::move(branches[i]);
      refs.push_back({{"$ref", absl::StrCat("#/$defs/", name)}});
    }
    schema["oneOf"] = std::move(refs);
  }
  if (!defs.empty()) schema["$defs"] = std::move(defs);
  return Dump(schema);
}

absl::StatusOr<Turn> ParseTurn(const std::string& text, const std::vector<std::string>& allowed_tools,
                               bool allow_answer) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the model's turn is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("the model's turn is not a JSON object");
  Turn turn;
  if (auto a = j.find("final_answer"); a != j.end()) {
    if (!allow_answer) return absl::InvalidArgumentError("the model answered where a tool call was required");
    if (!a->is_string()) return absl::InvalidArgumentError("final_answer is not a string");
    turn.is_answer = true;
    turn.answer = a->get<std::string>();
    return turn;
  }
  auto tool = j.find("tool");
  if (tool == j.end() || !tool->is_string())
    return absl::InvalidArgumentError("the model's turn has neither a final_answer nor a tool name");
  turn.tool = tool->get<std::string>();
  if (std::find(allowed_tools.begin(), allowed_tools.end(), turn.tool) == allowed_tools.end())
    return absl::InvalidArgumentError(absl::StrCat("the model called tool '", turn.tool, "', which is not allowed here"));
  auto args = j.find("arguments");
  if (args == j.end() || !args->is_object())
    return absl::InvalidArgumentError(absl::StrCat("the call of '", turn.tool, "' has no arguments object"));
  turn.arguments_json = Dump(*args);
  if (auto t = j.find("thought"); t != j.end()) {
    if (!t->is_string()) return absl::InvalidArgumentError("thought is not a string");
    turn.thought = t->get<std::string>();
  }
  return turn;
}

std::string TurnToJson(const Turn& turn) {
  Json j = Json::object();
  if (turn.is_answer) {
    j["final_answer"] = turn.answer;
    return Dump(j);
  }
  if (!turn.thought.empty()) j["thought"] = turn.thought;
  j["tool"] = turn.tool;
  j["arguments"] = Json::parse(turn.arguments_json, nullptr, /*allow_exceptions=*/false);
  return Dump(j);
}

}  // namespace llmesh::agent
