#include "llmesh/rag/store.h"

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace llmesh::rag {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS config(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
  id TEXT PRIMARY KEY, source TEXT NOT NULL, format INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS doc_meta(
  doc_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(doc_id, key));
CREATE INDEX IF NOT EXISTS doc_meta_kv ON doc_meta(key, value);
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, ord INTEGER NOT NULL,
  text TEXT NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
  text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
)sql";

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

}  // namespace

FilterSql BuildFilterSql(const std::vector<MetadataFilter>& filters) {
  FilterSql out;
  std::vector<std::string> parts;
  for (const auto& f : filters) {
    std::string in = absl::StrJoin(std::vector<std::string>(f.values.size(), "?"), ",");
    parts.push_back(absl::StrCat("c.doc_id IN (SELECT doc_id FROM doc_meta WHERE key = ? AND value IN (", in, "))"));
    out.params.push_back(f.key);
    for (const auto& v : f.values) out.params.push_back(v);
  }
  out.clause = absl::StrJoin(parts, " AND ");
  return out;
}

absl::StatusOr<std::unique_ptr<Store>> Store::Create(const std::string& path, const CollectionConfig& c) {
  auto db = SqliteDb::Open(path, /*create=*/true);
  if (!db.ok()) return db.status();
  if (auto st = (*db)->Exec(kSchema); !st.ok()) return st;
  auto txn = SqliteTxn::Begin(**db, true);
  if (!txn.ok()) return txn.status();
  auto ins = (*db)->Prepare("INSERT OR REPLACE INTO config(key, value) VALUES (?, ?)");
  if (!ins.ok()) return ins.status();
  std::vector<std::pair<std::string, std::string>> kv = {
      {"name", c.name},
      {"embedding_model", c.embedding_model},
      {"dimension", absl::StrCat(c.dimension)},
      {"metric", c.metric == Metric::kInnerProduct ? "ip" : "cosine"},
      {"chunk_tokens", absl::StrCat(c.chunking.chunk_tokens)},
      {"overlap_tokens", absl::StrCat(c.chunking.overlap_tokens)},
      {"hnsw_m", absl::StrCat(c.hnsw.m)},
      {"hnsw_ef_construction", absl::StrCat(c.hnsw.ef_construction)},
      {"hnsw_ef_search", absl::StrCat(c.hnsw.ef_search)}};
  for (const auto& [k, v] : kv) {
    ins->Reset();
    if (auto st = ins->Bind(1, k).Bind(2, v).Run(); !st.ok()) return st;
  }
  if (auto st = txn->Commit(); !st.ok()) return st;
  std::unique_ptr<Store> store(new Store(path, std::move(*db)));
  store->config_ = c;
  return store;
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  if (!std::filesystem::exists(path)) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
  auto db = SqliteDb::Open(path, /*create=*/false);
  if (!db.ok()) return db.status();
  if (auto st = (*db)->Exec(kSchema); !st.ok()) return st;
  std::unique_ptr<Store> store(new Store(path, std::move(*db)));
  if (auto st = store->LoadConfig(); !st.ok()) return st;
  return store;
}

absl::Status Store::LoadConfig() {
  auto q = db_->Prepare("SELECT key, value FROM config");
  if (!q.ok()) return q.status();
  std::map<std::string, std::string> kv;
  while (true) {
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    kv[q->Text(0)] = q->Text(1);
  }
  auto num = [&](const char* key, int32_t* out) -> absl::Status {
    if (!absl::SimpleAtoi(kv[key], out)) return absl::DataLossError(absl::StrCat(path_, ": bad config ", key));
    return absl::OkStatus();
  };
  config_.name = kv["name"];
  config_.embedding_model = kv["embedding_model"];
  config_.metric = kv["metric"] == "ip" ? Metric::kInnerProduct : Metric::kCosine;
  for (auto st : {num("dimension", &config_.dimension), num("chunk_tokens", &config_.chunking.chunk_tokens),
                  num("overlap_tokens", &config_.chunking.overlap_tokens), num("hnsw_m", &config_.hnsw.m),
                  num("hnsw_ef_construction", &config_.hnsw.ef_construction),
                  num("hnsw_ef_search", &config_.hnsw.ef_search)})
    if (!st.ok()) return st;
  if (config_.name.empty() || config_.dimension <= 0 || config_.dimension > kMaxDimension)
    return absl::DataLossError(absl::StrCat(path_, ": bad collection config"));
  return absl::OkStatus();
}

absl::StatusOr<WriteResult> Store::Upsert(const std::vector<PreparedDocument>& docs) {
  WriteResult result;
  auto txn = SqliteTxn::Begin(*db_, true);
  if (!txn.ok()) return txn.status();
  auto old_chunks = db_->Prepare("SELECT id FROM chunks WHERE doc_id = ?");
  auto del_chunks = db_->Prepare("DELETE FROM chunks WHERE doc_id = ?");
  auto del_meta = db_->Prepare("DELETE FROM doc_meta WHERE doc_id = ?");
  auto put_doc = db_->Prepare("INSERT OR REPLACE INTO documents(id, source, format, bytes) VALUES (?, ?, ?, ?)");
  auto put_meta = db_->Prepare("INSERT INTO doc_meta(doc_id, key, value) VALUES (?, ?, ?)");
  auto put_chunk = db_->Prepare("INSERT INTO chunks(doc_id, ord, text, embedding) VALUES (?, ?, ?, ?)");
  for (auto* s : {&old_chunks, &del_chunks, &del_meta, &put_doc, &put_meta, &put_chunk})
    if (!s->ok()) return s->status();
  for (const auto& d : docs) {
    old_chunks->Reset();
    old_chunks->Bind(1, d.doc.id);
    while (true) {
      auto row = old_chunks->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      result.removed.push_back(old_chunks->Int(0));
    }
    del_chunks->Reset();
    del_meta->Reset();
    put_doc->Reset();
    if (auto st = del_chunks->Bind(1, d.doc.id).Run(); !st.ok()) return st;
    if (auto st = del_meta->Bind(1, d.doc.id).Run(); !st.ok()) return st;
    if (auto st = put_doc->Bind(1, d.doc.id)
                      .Bind(2, d.doc.source)
                      .Bind(3, static_cast<int64_t>(d.doc.format))
                      .Bind(4, static_cast<int64_t>(d.doc.text.size()))
                      .Run();
        !st.ok())
      return st;
    for (const auto& [k, v] : d.doc.metadata) {
      put_meta->Reset();
      if (auto st = put_meta->Bind(1, d.doc.id).Bind(2, k).Bind(3, v).Run(); !st.ok()) return st;
    }
    for (size_t i = 0; i < d.chunks.size(); ++i) {
      put_chunk->Reset();
      if (auto st = put_chunk->Bind(1, d.doc.id)
                        .Bind(2, static_cast<int64_t>(i))
                        .Bind(3, d.chunks[i])
                        .BindBlob(4, d.embeddings[i])
                        .Run();
          !st.ok())
        return st;
      result.added.emplace_back(db_->LastInsertRowid(), d.embeddings[i]);
    }
    ++result.documents;
    result.chunks += static_cast<int32_t>(d.chunks.size());
  }
  if (auto st = txn->Commit(); !st.ok()) return st;
  return result;
}

absl::StatusOr<std::vector<int64_t>> Store::DeleteDocuments(const std::vector<std::string>& ids, int32_t* deleted) {
  std::vector<int64_t> removed;
  *deleted = 0;
  auto txn = SqliteTxn::Begin(*db_, true);
  if (!txn.ok()) return txn.status();
  auto old_chunks = db_->Prepare("SELECT id FROM chunks WHERE doc_id = ?");
  auto del_chunks = db_->Prepare("DELETE FROM chunks WHERE doc_id = ?");
  auto del_meta = db_->Prepare("DELETE FROM doc_meta WHERE doc_id = ?");
  auto del_doc = db_->Prepare("DELETE FROM documents WHERE id = ?");
  for (auto* s : {&old_chunks, &del_chunks, &del_meta, &del_doc})
    if (!s->ok()) return s->status();
  for (const auto& id : ids) {
    old_chunks->Reset();
    old_chunks->Bind(1, id);
    while (true) {
      auto row = old_chunks->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      removed.push_back(old_chunks->Int(0));
    }
    del_chunks->Reset();
    del_meta->Reset();
    del_doc->Reset();
    if (auto st = del_chunks->Bind(1, id).Run(); !st.ok()) return st;
    if (auto st = del_meta->Bind(1, id).Run(); !st.ok()) return st;
    if (auto st = del_doc->Bind(1, id).Run(); !st.ok()) return st;
    *deleted += db_->Changes();
  }
  if (auto st = txn->Commit(); !st.ok()) return st;
  return removed;
}

absl::StatusOr<std::vector<int64_t>> Store::AllChunkIds() {
  auto q = db_->Prepare("SELECT id FROM chunks ORDER BY id");
  if (!q.ok()) return q.status();
  std::vector<int64_t> ids;
  while (true) {
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ids.push_back(q->Int(0));
  }
  return ids;
}

absl::Status Store::ForEachChunkAfter(int64_t after_id,
                                      const std::function<absl::Status(int64_t, std::vector<float>)>& fn) {
  auto q = db_->Prepare("SELECT id, embedding FROM chunks WHERE id > ? ORDER BY id");
  if (!q.ok()) return q.status();
  q->Bind(1, after_id);
  while (true) {
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (auto st = fn(q->Int(0), q->Floats(1)); !st.ok()) return st;
  }
  return absl::OkStatus();
}

int64_t Store::SizeBytes() const { return FileSize(path_) + FileSize(path_ + "-wal"); }

void Store::Checkpoint() { (void)db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)"); }

absl::StatusOr<Store::Reader> Store::BeginRead() {
  std::unique_ptr<SqliteDb> db;
  {
    std::lock_guard lock(readers_mu_);
    if (!readers_.empty()) {
      db = std::move(readers_.back());
      readers_.pop_back();
    }
  }
  if (!db) {
    auto opened = SqliteDb::Open(path_, false);
    if (!opened.ok()) return opened.status();
    db = std::move(*opened);
  }
  if (auto st = db->Exec("BEGIN"); !st.ok()) return st;
  Reader r(this, std::move(db));
  r.in_txn_ = true;
  return r;
}

void Store::Release(std::unique_ptr<SqliteDb> db) {
  std::lock_guard lock(readers_mu_);
  if (readers_.size() < 16) readers_.push_back(std::move(db));
}

Store::Reader::Reader(Store* store, std::unique_ptr<SqliteDb> db) : store_(store), db_(std::move(db)) {}
Store::Reader::Reader(Reader&& o) noexcept : store_(o.store_), db_(std::move(o.db_)), in_txn_(o.in_txn_) {
  o.in_txn_ = false;
}
Store::Reader::~Reader() {
  if (!db_) return;
  if (in_txn_ && !db_->Exec("COMMIT").ok()) return;  // a connection in a bad state is dropped
  store_->Release(std::move(db_));
}

absl::StatusOr<std::vector<std::pair<int64_t, std::vector<float>>>> Store::Reader::FilteredVectors(
    const FilterSql& filter, size_t limit) {
  std::string sql = "SELECT c.id, c.embedding FROM chunks c";
  if (!filter.clause.empty()) absl::StrAppend(&sql, " WHERE ", filter.clause);
  absl::StrAppend(&sql, " LIMIT ", limit + 1);
  auto q = db_->Prepare(sql);
  if (!q.ok()) return q.status();
  for (size_t i = 0; i < filter.params.size(); ++i) q->Bind(static_cast<int>(i + 1), filter.params[i]);
  std::vector<std::pair<int64_t, std::vector<float>>> out;
  while (true) {
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.emplace_back(q->Int(0), q->Floats(1));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> Store::Reader::FilteredIds(const FilterSql& filter) {
  std::string sql = "SELECT c.id FROM chunks c";
  if (!filter.clause.empty()) absl::StrAppend(&sql, " WHERE ", filter.clause);
  auto q = db_->Prepare(sql);
  if (!q.ok()) return q.status();
  for (size_t i = 0; i < filter.params.size(); ++i) q->Bind(static_cast<int>(i + 1), filter.params[i]);
  std::vector<int64_t> out;
  while (true) {
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(q->Int(0));
  }
  return out;
}

absl::StatusOr<std::vector<ChunkRow>> Store::Reader::Fetch(const std::vector<int64_t>& ids) {
  auto q = db_->Prepare(
      "SELECT c.id, c.doc_id, c.text, d.source FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ?");
  auto m = db_->Prepare("SELECT key, value FROM doc_meta WHERE doc_id = ?");
  if (!q.ok()) return q.status();
  if (!m.ok()) return m.status();
  std::vector<ChunkRow> out;
  for (int64_t id : ids) {
    q->Reset();
    q->Bind(1, id);
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) continue;
    ChunkRow r{q->Int(0), q->Text(1), q->Text(2), q->Text(3), {}};
    m->Reset();
    m->Bind(1, r.document_id);
    while (true) {
      auto mr = m->Step();
      if (!mr.ok()) return mr.status();
      if (!*mr) break;
      r.metadata[m->Text(0)] = m->Text(1);
    }
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::pair<int64_t, int64_t>> Store::Reader::Counts() {
  auto q = db_->Prepare("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)");
  if (!q.ok()) return q.status();
  auto row = q->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("count returned no row");
  return std::make_pair(q->Int(0), q->Int(1));
}

}  // namespace llmesh::rag
