// agent-svc's durable state in one SQLite database (WAL, synchronous=FULL):
// sessions (model, system prompt, times), their messages and steps in order,
// and the registered remote tools, so a restarted service continues sessions
// and still knows its tools. Each append is its own transaction: a step the
// client saw is on disk. Thread-safe (one connection behind a mutex; the
// writes are small).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/sqlite/sqlite.h"
#include "llmesh/v1/agent.pb.h"

namespace llmesh::agent {

class AgentStore {
 public:
  // Opens or creates the database file at `path` (its directory must exist).
  static absl::StatusOr<std::unique_ptr<AgentStore>> Open(const std::string& path);

  // A new session with a fresh random id ("s-" + 32 hex digits).
  absl::StatusOr<v1::AgentSession> CreateSession(const std::string& model, const std::string& system_prompt);
  // NOT_FOUND if unknown. `with_history`: also messages and steps, in order.
  absl::StatusOr<v1::AgentSession> GetSession(const std::string& id, bool with_history);
  // Most recently updated first, without history; `limit` > 0.
  absl::StatusOr<std::vector<v1::AgentSession>> ListSessions(int limit);
  // NOT_FOUND if unknown; removes its messages and steps too.
  absl::Status DeleteSession(const std::string& id);
  // A run starts: the model and system prompt it uses; bumps updated time.
  absl::Status UpdateSession(const std::string& id, const std::string& model, const std::string& system_prompt);
  absl::Status AppendMessage(const std::string& id, const v1::ChatMessage& message);
  absl::Status AppendStep(const std::string& id, const v1::AgentStep& step);

  // Remote tools: upsert by name, delete, list (sorted by name).
  absl::Status SaveTool(const v1::ToolSpec& spec);
  absl::Status DeleteTool(const std::string& name);
  absl::StatusOr<std::vector<v1::ToolSpec>> ListTools();

 private:
  explicit AgentStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
  absl::Status Migrate();
  absl::Status Touch(const std::string& id);

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;
};

}  // namespace llmesh::agent
