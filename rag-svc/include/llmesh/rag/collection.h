// One collection: its SQLite store (truth), its HNSW index (a cache of the
// vectors in the store), and the lock that keeps them in step.
//
// Write path (Upsert): chunk and embed with no lock held, then under the
// exclusive lock commit one SQLite transaction (documents, metadata, chunks,
// vectors, FTS rows) and apply the same change to the HNSW index. The call
// returns after the commit: acknowledged means durable.
// Read path (Query): embed the query with no lock held, then under the shared
// lock search HNSW and FTS5 through one SQLite snapshot. A query therefore
// sees an upsert entirely or not at all.
// Recovery (Open): load the saved index if its checksum holds, else start
// empty; drop labels whose chunks are gone; add chunks past the watermark.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "llmesh/rag/dense_index.h"
#include "llmesh/rag/embedder.h"
#include "llmesh/rag/store.h"
#include "llmesh/rag/types.h"

namespace llmesh::rag {

struct CollectionOptions {
  int embed_batch = 16;  // chunks per Embed call
  RetryPolicy retry;
  // With filters, dense search is exact over the matching chunks when there
  // are at most this many; otherwise HNSW with over-fetch and post-filtering.
  size_t exact_filter_limit = 4096;
  // Candidates taken from each list before fusion (at least top_k).
  size_t fusion_candidates = 50;
};

struct RecoveryStats {
  bool loaded = false;  // a saved index was usable
  int64_t added = 0;    // chunks added past the watermark (all of them on a rebuild)
  int64_t dropped = 0;  // labels dropped whose chunks were deleted
};

class Collection {
 public:
  static constexpr char kDbFile[] = "rag.db";
  static constexpr char kIndexFile[] = "dense.hnsw";

  // A new collection in `dir` (which must exist and be empty).
  static absl::StatusOr<std::shared_ptr<Collection>> Create(const std::string& dir, const CollectionConfig& config,
                                                            CollectionOptions options);
  static absl::StatusOr<std::shared_ptr<Collection>> Open(const std::string& dir, CollectionOptions options);

  const CollectionConfig& config() const { return store_->config(); }
  const RecoveryStats& recovery() const { return recovery_; }

  absl::StatusOr<UpsertResult> Upsert(const std::vector<DocumentInput>& docs, Embedder& embedder,
                                      TokenCounter& counter);
  absl::StatusOr<int32_t> DeleteDocuments(const std::vector<std::string>& ids);
  absl::StatusOr<std::vector<QueryHit>> Query(const QueryOptions& options, Embedder& embedder);
  absl::StatusOr<CollectionInfo> Info();

  // Writes the index and its watermark if anything changed since the last save.
  absl::Status SaveIndex();
  // After this, every call answers NOT_FOUND (the collection is being deleted).
  void Drop();

 private:
  Collection(std::string dir, std::unique_ptr<Store> store, CollectionOptions options)
      : dir_(std::move(dir)), store_(std::move(store)), options_(options) {}
  absl::Status Recover();
  absl::Status Apply(const WriteResult& w);  // exclusive lock held
  absl::StatusOr<std::vector<std::pair<int64_t, double>>> Dense(Store::Reader& reader, std::span<const float> q,
                                                                const FilterSql& filter, size_t n);
  absl::Status CheckLive() const;
  std::string index_path() const { return dir_ + "/" + kIndexFile; }

  std::string dir_;
  std::unique_ptr<Store> store_;
  CollectionOptions options_;
  std::unique_ptr<DenseIndex> index_;
  RecoveryStats recovery_;

  // Store writes + index changes (writer) vs. queries (readers). absl::Mutex
  // lets a waiting writer in ahead of new readers: ingest is not starved by
  // a steady query load (std::shared_mutex on glibc would starve it).
  mutable absl::Mutex mu_;
  std::mutex save_mu_;            // one save at a time
  int64_t applied_ = 0;           // highest chunk id in the index (the watermark)
  std::atomic<int64_t> version_{0};
  int64_t saved_version_ = -1;
  bool dropped_ = false;
};

// Checks and fills a query's options (top_k default 5, 1..100; filters).
absl::Status ValidateQuery(QueryOptions& options);
// Checks upsert input: ids, duplicates, text, metadata.
absl::Status ValidateDocuments(const std::vector<DocumentInput>& docs);

}  // namespace llmesh::rag
