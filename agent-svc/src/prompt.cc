#include "llmesh/agent/prompt.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace llmesh::agent {
namespace {

using Json = nlohmann::ordered_json;

std::string TypeName(const Json& schema) {
  if (!schema.is_object()) return "any";
  if (auto c = schema.find("const"); c != schema.end()) return c->dump(-1, ' ', false, Json::error_handler_t::replace);
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array()) {
    std::string out;
    for (const auto& v : *e) absl::StrAppend(&out, out.empty() ? "" : " | ", v.dump(-1, ' ', false, Json::error_handler_t::replace));
    return out;
  }
  auto t = schema.find("type");
  if (t == schema.end()) return "any";
  if (t->is_string()) return t->get<std::string>();
  if (t->is_array()) {
    std::string out;
    for (const auto& v : *t)
      if (v.is_string()) absl::StrAppend(&out, out.empty() ? "" : " | ", v.get<std::string>());
    return out.empty() ? "any" : out;
  }
  return "any";
}

}  // namespace

std::string ToolSignature(const v1::ToolSpec& tool) {
  Json schema = Json::parse(tool.parameters_json_schema(), nullptr, /*allow_exceptions=*/false);
  std::string args;
  if (schema.is_object()) {
    auto props = schema.find("properties");
    auto req = schema.find("required");
    if (props != schema.end() && props->is_object()) {
      for (const auto& [name, sub] : props->items()) {
        bool required = false;
        if (req != schema.end() && req->is_array())
          for (const auto& r : *req) required = required || (r.is_string() && r.get<std::string>() == name);
        absl::StrAppend(&args, args.empty() ? "" : ", ", name, required ? "" : "?", ": ", TypeName(sub));
      }
    }
  }
  return absl::StrCat(tool.name(), "(", args, ")");
}

std::string SystemMessage(const std::string& system_prompt, const std::vector<v1::ToolSpec>& tools) {
  std::string out = system_prompt.empty() ? kDefaultSystemPrompt : system_prompt;
  if (tools.empty()) {
    absl::StrAppend(&out, "\nReply with JSON: {\"final_answer\": \"...\"}");
    return out;
  }
  absl::StrAppend(&out, "\nTools:");
  for (const auto& t : tools) absl::StrAppend(&out, "\n- ", ToolSignature(t), ": ", t.description());
  absl::StrAppend(&out,
                  "\nReply with JSON: {\"thought\": \"...\", \"tool\": \"...\", \"arguments\": {...}} to call a tool, "
                  "or {\"final_answer\": \"...\"}");
  return out;
}

std::string Observation(const v1::ChatMessage& tool_message) {
  return absl::StrCat("Result of ", tool_message.name(), " (", tool_message.tool_call_id(), "): ",
                      tool_message.content());
}

std::vector<v1::ChatMessage> BuildPrompt(const std::string& system_message,
                                         const std::vector<v1::ChatMessage>& history, size_t max_history) {
  size_t begin = history.size() > max_history ? history.size() - max_history : 0;
  while (begin < history.size() && history[begin].role() == "assistant") ++begin;
  std::vector<v1::ChatMessage> out;
  v1::ChatMessage system;
  system.set_role("system");
  system.set_content(system_message);
  out.push_back(std::move(system));
  for (size_t i = begin; i < history.size(); ++i) {
    const v1::ChatMessage& m = history[i];
    std::string role = m.role() == "assistant" ? "assistant" : "user";
    std::string content = m.role() == "tool" ? Observation(m) : m.content();
    if (out.size() > 1 && out.back().role() == role) {
      absl::StrAppend(out.back().mutable_content(), "\n\n", content);
      continue;
    }
    v1::ChatMessage p;
    p.set_role(role);
    p.set_content(std::move(content));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace llmesh::agent
