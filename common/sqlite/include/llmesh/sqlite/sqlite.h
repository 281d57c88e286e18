// A thin RAII layer over the SQLite C API: a connection, prepared statements
// with typed binds and columns, and a transaction guard. Every failure is an
// absl::Status carrying SQLite's message. Shared by the services that keep
// durable state (rag-svc collections, agent-svc sessions).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llmesh {

class SqliteStmt;

class SqliteDb {
 public:
  // Opens (creating when `create`) the database at `path` in WAL mode with
  // synchronous=FULL, foreign keys on, and a busy timeout.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path, bool create);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements without results.
  absl::Status Exec(const std::string& sql);
  absl::StatusOr<SqliteStmt> Prepare(const std::string& sql);
  int64_t LastInsertRowid() const;
  int Changes() const;
  sqlite3* raw() { return db_; }
  absl::Status Error(const std::string& what) const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

class SqliteStmt {
 public:
  SqliteStmt(SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteStmt(SqliteStmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  SqliteStmt& operator=(SqliteStmt&&) = delete;
  ~SqliteStmt();

  // Binds are 1-based, like SQLite's.
  SqliteStmt& Bind(int i, int64_t v);
  SqliteStmt& Bind(int i, const std::string& v);
  SqliteStmt& BindBlob(int i, std::span<const float> v);
  // true: a row is ready; false: done. Errors are statuses.
  absl::StatusOr<bool> Step();
  // Runs to completion (for statements without rows).
  absl::Status Run();
  void Reset();

  int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  // A float vector copied from a BLOB column (SQLite's pointer need not be
  // aligned); empty when the blob's size is not a multiple of sizeof(float).
  std::vector<float> Floats(int col) const;

 private:
  SqliteDb* db_;
  sqlite3_stmt* stmt_;
  absl::Status bind_status_;
};

// BEGIN IMMEDIATE (writers) or BEGIN (readers: a snapshot); rolls back unless committed.
class SqliteTxn {
 public:
  static absl::StatusOr<SqliteTxn> Begin(SqliteDb& db, bool write);
  SqliteTxn(SqliteTxn&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  ~SqliteTxn();
  absl::Status Commit();

 private:
  explicit SqliteTxn(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;
};

}  // namespace llmesh
