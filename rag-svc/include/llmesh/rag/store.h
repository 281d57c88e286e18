// One collection's durable state in SQLite (WAL, synchronous=FULL): its
// config, documents, metadata, chunks with their embeddings (BLOBs), and the
// FTS5 index over chunk text, kept in step by triggers. SQLite is the source
// of truth; the dense index is rebuilt from it.
//
// Writes (Upsert, DeleteDocuments) are one transaction each; the caller
// serialises them. Reads go through a Reader: a pooled connection holding one
// snapshot, so a query sees one consistent state while ingest goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/sqlite/sqlite.h"
#include "llmesh/rag/types.h"

namespace llmesh::rag {

// A document ready to write: its chunks embedded already.
struct PreparedDocument {
  DocumentInput doc;
  std::vector<std::string> chunks;
  std::vector<std::vector<float>> embeddings;  // one per chunk
};

struct WriteResult {
  std::vector<std::pair<int64_t, std::vector<float>>> added;  // new chunk ids with vectors
  std::vector<int64_t> removed;                               // chunk ids gone
  int32_t documents = 0;
  int32_t chunks = 0;
};

// The metadata filters as SQL over a chunk table alias ("c"): a clause to AND
// into WHERE, and its parameters in order.
struct FilterSql {
  std::string clause;  // "" when there are no filters
  std::vector<std::string> params;
};
FilterSql BuildFilterSql(const std::vector<MetadataFilter>& filters);

struct ChunkRow {
  int64_t id = 0;
  std::string document_id;
  std::string text;
  std::string source;
  Metadata metadata;
};

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Create(const std::string& path, const CollectionConfig& config);
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  const CollectionConfig& config() const { return config_; }
  const std::string& path() const { return path_; }

  absl::StatusOr<WriteResult> Upsert(const std::vector<PreparedDocument>& docs);
  // Chunk ids removed; *deleted counts the documents that existed.
  absl::StatusOr<std::vector<int64_t>> DeleteDocuments(const std::vector<std::string>& ids, int32_t* deleted);

  // For rebuilding the dense index.
  absl::StatusOr<std::vector<int64_t>> AllChunkIds();
  absl::Status ForEachChunkAfter(int64_t after_id,
                                 const std::function<absl::Status(int64_t, std::vector<float>)>& fn);

  class Reader {
   public:
    Reader(Reader&&) noexcept;
    ~Reader();
    // BM25 over chunk text: (chunk id, -bm25), best first.
    absl::StatusOr<std::vector<std::pair<int64_t, double>>> Lexical(const std::string& fts_query,
                                                                    const FilterSql& filter, size_t limit);
    // Chunks passing the filter with their vectors, at most `limit` (+1 to tell overflow).
    absl::StatusOr<std::vector<std::pair<int64_t, std::vector<float>>>> FilteredVectors(const FilterSql& filter,
                                                                                        size_t limit);
    absl::StatusOr<std::vector<int64_t>> FilteredIds(const FilterSql& filter);
    // Rows for `ids` that exist (others are skipped).
    absl::StatusOr<std::vector<ChunkRow>> Fetch(const std::vector<int64_t>& ids);
    absl::StatusOr<std::pair<int64_t, int64_t>> Counts();  // documents, chunks

   private:
    friend class Store;
    Reader(Store* store, std::unique_ptr<SqliteDb> db);
    Store* store_;
    std::unique_ptr<SqliteDb> db_;
    bool in_txn_ = false;
  };
  absl::StatusOr<Reader> BeginRead();

  // Bytes of the database and its WAL.
  int64_t SizeBytes() const;
  // Checkpoints the WAL (at shutdown / after index saves).
  void Checkpoint();

 private:
  Store(std::string path, std::unique_ptr<SqliteDb> db) : path_(std::move(path)), db_(std::move(db)) {}
  absl::Status LoadConfig();
  void Release(std::unique_ptr<SqliteDb> db);

  std::string path_;
  std::unique_ptr<SqliteDb> db_;  // the writer connection
  CollectionConfig config_;
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<SqliteDb>> readers_;  // idle reader connections
};

}  // namespace llmesh::rag
