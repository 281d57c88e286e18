#include "llmesh/agent/store.h"

#include <mutex>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace llmesh::agent {
namespace {

constexpr int kSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS sessions(
  id TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  system_prompt TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions(updated_ms);
CREATE TABLE IF NOT EXISTS messages(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  name TEXT NOT NULL,
  tool_call_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, seq);
CREATE TABLE IF NOT EXISTS steps(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  kind INTEGER NOT NULL,
  step INTEGER NOT NULL,
  text TEXT NOT NULL,
  tool_name TEXT NOT NULL,
  tool_call_id TEXT NOT NULL,
  arguments_json TEXT NOT NULL,
  tool_error INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cached_prompt_tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS steps_by_session ON steps(session_id, seq);
CREATE TABLE IF NOT EXISTS remote_tools(
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL,
  parameters_json_schema TEXT NOT NULL,
  address TEXT NOT NULL);
)sql";

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string NewSessionId() {
  static std::mutex* mu = new std::mutex;
  static absl::BitGen* gen = new absl::BitGen;
  std::lock_guard lock(*mu);
  return absl::StrFormat("s-%016x%016x", absl::Uniform<uint64_t>(*gen), absl::Uniform<uint64_t>(*gen));
}

absl::Status NotFound(const std::string& id) { return absl::NotFoundError(absl::StrCat("no session '", id, "'")); }

}  // namespace

absl::StatusOr<std::unique_ptr<AgentStore>> AgentStore::Open(const std::string& path) {
  auto db = SqliteDb::Open(path, /*create=*/true);
  if (!db.ok()) return db.status();
  std::unique_ptr<AgentStore> store(new AgentStore(std::move(*db)));
  if (auto st = store->Migrate(); !st.ok()) return st;
  return store;
}

absl::Status AgentStore::Migrate() {
  auto v = db_->Prepare("PRAGMA user_version");
  if (!v.ok()) return v.status();
  auto row = v->Step();
  if (!row.ok()) return row.status();
  int64_t version = *row ? v->Int(0) : 0;
  if (version > kSchemaVersion)
    return absl::FailedPreconditionError(
        absl::StrCat("agent database has schema version ", version, "; this build knows up to ", kSchemaVersion));
  if (auto st = db_->Exec(kSchema); !st.ok()) return st;
  return db_->Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion));
}

absl::StatusOr<v1::AgentSession> AgentStore::CreateSession(const std::string& model,
                                                           const std::string& system_prompt) {
  std::lock_guard lock(mu_);
  v1::AgentSession s;
  s.set_session_id(NewSessionId());
  s.set_model(model);
  s.set_system_prompt(system_prompt);
  s.set_created_unix_ms(NowMs());
  s.set_updated_unix_ms(s.created_unix_ms());
  auto stmt = db_->Prepare("INSERT INTO sessions(id, model, system_prompt, created_ms, updated_ms) VALUES(?,?,?,?,?)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, s.session_id()).Bind(2, model).Bind(3, system_prompt).Bind(4, s.created_unix_ms()).Bind(5, s.updated_unix_ms());
  if (auto st = stmt->Run(); !st.ok()) return st;
  return s;
}

absl::StatusOr<v1::AgentSession> AgentStore::GetSession(const std::string& id, bool with_history) {
  std::lock_guard lock(mu_);
  // One read transaction: the session, its messages and steps are a snapshot.
  auto txn = SqliteTxn::Begin(*db_, /*write=*/false);
  if (!txn.ok()) return txn.status();
  auto stmt = db_->Prepare("SELECT model, system_prompt, created_ms, updated_ms FROM sessions WHERE id=?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id);
  auto row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return NotFound(id);
  v1::AgentSession s;
  s.set_session_id(id);
  s.set_model(stmt->Text(0));
  s.set_system_prompt(stmt->Text(1));
  s.set_created_unix_ms(stmt->Int(2));
  s.set_updated_unix_ms(stmt->Int(3));
  if (!with_history) return s;

  auto msgs = db_->Prepare("SELECT role, content, name, tool_call_id FROM messages WHERE session_id=? ORDER BY seq");
  if (!msgs.ok()) return msgs.status();
  msgs->Bind(1, id);
  while (true) {
    auto r = msgs->Step();
    if (!r.ok()) return r.status();
    if (!*r) break;
    auto* m = s.add_messages();
    m->set_role(msgs->Text(0));
    m->set_content(msgs->Text(1));
    m->set_name(msgs->Text(2));
    m->set_tool_call_id(msgs->Text(3));
  }
  auto steps = db_->Prepare(
      "SELECT kind, step, text, tool_name, tool_call_id, arguments_json, tool_error, prompt_tokens, "
      "completion_tokens, cached_prompt_tokens FROM steps WHERE session_id=? ORDER BY seq");
  if (!steps.ok()) return steps.status();
  steps->Bind(1, id);
  while (true) {
    auto r = steps->Step();
    if (!r.ok()) return r.status();
    if (!*r) break;
    auto* st = s.add_steps();
    int64_t kind = steps->Int(0);
    st->set_kind(v1::AgentStepKind_IsValid(static_cast<int>(kind)) ? static_cast<v1::AgentStepKind>(kind)
                                                                    : v1::AGENT_STEP_KIND_UNSPECIFIED);
    st->set_session_id(id);
    st->set_step(static_cast<int32_t>(steps->Int(1)));
    st->set_text(steps->Text(2));
    st->set_tool_name(steps->Text(3));
    st->set_tool_call_id(steps->Text(4));
    st->set_arguments_json(steps->Text(5));
    st->set_tool_error(steps->Int(6) != 0);
    if (st->kind() == v1::AGENT_STEP_KIND_USAGE) {
      auto* u = st->mutable_usage();
      u->set_prompt_tokens(static_cast<int32_t>(steps->Int(7)));
      u->set_completion_tokens(static_cast<int32_t>(steps->Int(8)));
      u->set_total_tokens(u->prompt_tokens() + u->completion_tokens());
      u->set_cached_prompt_tokens(static_cast<int32_t>(steps->Int(9)));
    }
  }
  return s;
}

absl::StatusOr<std::vector<v1::AgentSession>> AgentStore::ListSessions(int limit) {
  std::lock_guard lock(mu_);
  auto stmt = db_->Prepare(
      "SELECT id, model, system_prompt, created_ms, updated_ms FROM sessions ORDER BY updated_ms DESC, id LIMIT ?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, static_cast<int64_t>(limit));
  std::vector<v1::AgentSession> out;
  while (true) {
    auto r = stmt->Step();
    if (!r.ok()) return r.status();
    if (!*r) break;
    v1::AgentSession s;
    s.set_session_id(stmt->Text(0));
    s.set_model(stmt->Text(1));
    s.set_system_prompt(stmt->Text(2));
    s.set_created_unix_ms(stmt->Int(3));
    s.set_updated_unix_ms(stmt->Int(4));
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status AgentStore::DeleteSession(const std::string& id) {
  std::lock_guard lock(mu_);
  auto stmt = db_->Prepare("DELETE FROM sessions WHERE id=?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id);
  if (auto st = stmt->Run(); !st.ok()) return st;
  if (db_->Changes() == 0) return NotFound(id);
  return absl::OkStatus();
}

absl::Status AgentStore::Touch(const std::string& id) {
  auto stmt = db_->Prepare("UPDATE sessions SET updated_ms=? WHERE id=?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, NowMs()).Bind(2, id);
  if (auto st = stmt->Run(); !st.ok()) return st;
  if (db_->Changes() == 0) return NotFound(id);
  return absl::OkStatus();
}

absl::Status AgentStore::UpdateSession(const std::string& id, const std::string& model,
                                       const std::string& system_prompt) {
  std::lock_guard lock(mu_);
  auto stmt = db_->Prepare("UPDATE sessions SET model=?, system_prompt=?, updated_ms=? WHERE id=?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, model).Bind(2, system_prompt).Bind(3, NowMs()).Bind(4, id);
  if (auto st = stmt->Run(); !st.ok()) return st;
  if (db_->Changes() == 0) return NotFound(id);
  return absl::OkStatus();
}

absl::Status AgentStore::AppendMessage(const std::string& id, const v1::ChatMessage& message) {
  std::lock_guard lock(mu_);
  auto txn = SqliteTxn::Begin(*db_, /*write=*/true);
  if (!txn.ok()) return txn.status();
  if (auto st = Touch(id); !st.ok()) return st;
  auto stmt =
      db_->Prepare("INSERT INTO messages(session_id, role, content, name, tool_call_id) VALUES(?,?,?,?,?)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id).Bind(2, message.role()).Bind(3, message.content()).Bind(4, message.name())
      .Bind(5, message.tool_call_id());
  if (auto st = stmt->Run(); !st.ok()) return st;
  return txn->Commit();
}

absl::Status AgentStore::AppendStep(const std::string& id, const v1::AgentStep& step) {
  std::lock_guard lock(mu_);
  auto txn = SqliteTxn::Begin(*db_, /*write=*/true);
  if (!txn.ok()) return txn.status();
  if (auto st = Touch(id); !st.ok()) return st;
  auto stmt = db_->Prepare(
      "INSERT INTO steps(session_id, kind, step, text, tool_name, tool_call_id, arguments_json, tool_error, "
      "prompt_tokens, completion_tokens, cached_prompt_tokens) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id).Bind(2, static_cast<int64_t>(step.kind())).Bind(3, static_cast<int64_t>(step.step()))
      .Bind(4, step.text()).Bind(5, step.tool_name()).Bind(6, step.tool_call_id()).Bind(7, step.arguments_json())
      .Bind(8, static_cast<int64_t>(step.tool_error())).Bind(9, static_cast<int64_t>(step.usage().prompt_tokens()))
      .Bind(10, static_cast<int64_t>(step.usage().completion_tokens()))
      .Bind(11, static_cast<int64_t>(step.usage().cached_prompt_tokens()));
  if (auto st = stmt->Run(); !st.ok()) return st;
  return txn->Commit();
}

absl::Status AgentStore::SaveTool(const v1::ToolSpec& spec) {
  std::lock_guard lock(mu_);
  auto stmt = db_->Prepare(
      "INSERT INTO remote_tools(name, description, parameters_json_schema, address) VALUES(?,?,?,?) "
      "ON CONFLICT(name) DO UPDATE SET description=excluded.description, "
      "parameters_json_schema=excluded.parameters_json_schema, address=excluded.address");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, spec.name()).Bind(2, spec.description()).Bind(3, spec.parameters_json_schema()).Bind(4, spec.address());
  return stmt->Run();
}

absl::Status AgentStore::DeleteTool(const std::string& name) {
  std::lock_guard lock(mu_);
  auto stmt = db_->Prepare("DELETE FROM remote_tools WHERE name=?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, name);
  return stmt->Run();
}

absl::StatusOr<std::vector<v1::ToolSpec>> AgentStore::ListTools() {
  std::lock_guard lock(mu_);
  auto stmt = db_->Prepare("SELECT name, description, parameters_json_schema, address FROM remote_tools ORDER BY name");
  if (!stmt.ok()) return stmt.status();
  std::vector<v1::ToolSpec> out;
  while (true) {
    auto r = stmt->Step();
    if (!r.ok()) return r.status();
    if (!*r) break;
    v1::ToolSpec t;
    t.set_name(stmt->Text(0));
    t.set_description(stmt->Text(1));
    t.set_parameters_json_schema(stmt->Text(2));
    t.set_address(stmt->Text(3));
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace llmesh::agent
