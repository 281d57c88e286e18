#include "llmesh/sqlite/sqlite.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace llmesh {

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, bool create) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);
    return absl::InternalError(absl::StrCat("open ", path, ": ", msg));
  }
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));
  sqlite3_busy_timeout(raw, 10000);
  // WAL: readers never block the writer; FULL: a commit is on disk when it returns.
  if (auto st = db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
      !st.ok())
    return st;
  return db;
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

absl::Status SqliteDb::Error(const std::string& what) const {
  int code = sqlite3_errcode(db_);
  std::string msg = absl::StrCat(what, ": ", sqlite3_errmsg(db_));
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(msg);
  if (code == SQLITE_FULL || code == SQLITE_NOMEM) return absl::ResourceExhaustedError(msg);
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return absl::DataLossError(msg);
  return absl::InternalError(msg);
}

absl::Status SqliteDb::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "error";
    sqlite3_free(err);
    return Error(absl::StrCat("exec '", sql.substr(0, 60), "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SqliteStmt> SqliteDb::Prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK)
    return Error(absl::StrCat("prepare '", sql.substr(0, 60), "'"));
  return SqliteStmt(this, stmt);
}

int64_t SqliteDb::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
int SqliteDb::Changes() const { return sqlite3_changes(db_); }

SqliteStmt::~SqliteStmt() {
  if (stmt_) sqlite3_finalize(stmt_);
}

SqliteStmt& SqliteStmt::Bind(int i, int64_t v) {
  if (sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK && bind_status_.ok()) bind_status_ = db_->Error("bind");
  return *this;
}

SqliteStmt& SqliteStmt::Bind(int i, const std::string& v) {
  if (sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK &&
      bind_status_.ok())
    bind_status_ = db_->Error("bind");
  return *this;
}

SqliteStmt& SqliteStmt::BindBlob(int i, std::span<const float> v) {
  if (sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size_bytes()), SQLITE_TRANSIENT) != SQLITE_OK &&
      bind_status_.ok())
    bind_status_ = db_->Error("bind");
  return *this;
}

absl::StatusOr<bool> SqliteStmt::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error("step");
}

absl::Status SqliteStmt::Run() {
  auto r = Step();
  if (!r.ok()) return r.status();
  return absl::OkStatus();
}

void SqliteStmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_status_ = absl::OkStatus();
}

int64_t SqliteStmt::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
double SqliteStmt::Double(int col) const { return sqlite3_column_double(stmt_, col); }

std::string SqliteStmt::Text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

std::vector<float> SqliteStmt::Floats(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (!p || n <= 0 || n % sizeof(float) != 0) return {};
  std::vector<float> out(static_cast<size_t>(n) / sizeof(float));
  std::memcpy(out.data(), p, static_cast<size_t>(n));
  return out;
}

absl::StatusOr<SqliteTxn> SqliteTxn::Begin(SqliteDb& db, bool write) {
  if (auto st = db.Exec(write ? "BEGIN IMMEDIATE" : "BEGIN"); !st.ok()) return st;
  return SqliteTxn(&db);
}

SqliteTxn::~SqliteTxn() {
  if (db_) (void)db_->Exec("ROLLBACK");
}

absl::Status SqliteTxn::Commit() {
  auto st = db_->Exec("COMMIT");
  if (st.ok()) db_ = nullptr;
  return st;
}

}  // namespace llmesh
