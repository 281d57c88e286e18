#include "llmesh/agent/tool_registry.h"

#include "absl/strings/str_cat.h"
#include "llmesh/agent/builtin_tools.h"

namespace llmesh::agent {

absl::Status ToolRegistry::Add(std::shared_ptr<Tool> tool) {
  if (auto st = ValidateToolSpec(tool->spec()); !st.ok()) return st;
  const std::string& name = tool->spec().name();
  if (IsBuiltinTool(name))
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is a built-in tool name"));
  std::lock_guard lock(mu_);
  tools_[name] = std::move(tool);
  return absl::OkStatus();
}

absl::Status ToolRegistry::Remove(const std::string& name) {
  std::lock_guard lock(mu_);
  if (tools_.erase(name) == 0) return absl::NotFoundError(absl::StrCat("no registered tool '", name, "'"));
  return absl::OkStatus();
}

std::shared_ptr<Tool> ToolRegistry::Find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = tools_.find(name);
  return it == tools_.end() ? nullptr : it->second;
}

std::vector<v1::ToolSpec> ToolRegistry::List() const {
  std::lock_guard lock(mu_);
  std::vector<v1::ToolSpec> out;
  for (const auto& [name, tool] : tools_) out.push_back(tool->spec());
  return out;
}

}  // namespace llmesh::agent
