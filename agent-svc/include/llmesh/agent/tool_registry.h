// Remote tools registered by address (RegisterTool), by name; shared by every
// run. Built-in names (calculator, current_time, rag_search) are reserved.
// Thread-safe: a run takes the tools it names at its start and keeps them
// (shared_ptr) even if they are unregistered meanwhile.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/agent/tool.h"

namespace llmesh::agent {

class ToolRegistry {
 public:
  // Validates the spec (ValidateToolSpec); a name already registered is
  // replaced (a tool process that moved or restarted registers again).
  absl::Status Add(std::shared_ptr<Tool> tool);
  // NOT_FOUND if no remote tool has that name.
  absl::Status Remove(const std::string& name);
  // nullptr if unknown.
  std::shared_ptr<Tool> Find(const std::string& name) const;
  // Specs sorted by name.
  std::vector<v1::ToolSpec> List() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Tool>> tools_;
};

}  // namespace llmesh::agent
