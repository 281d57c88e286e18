// The rag library's front door: the collections under a data directory.
//
//   data_dir/collections/<name>/rag.db      SQLite (truth)
//   data_dir/collections/<name>/dense.hnsw  HNSW index (+ .meta sidecar; a cache)
//
// A collection appears atomically (built in a temp directory, then renamed)
// and disappears atomically (renamed away, then removed); leftovers of either
// are cleaned at start-up.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/rag/collection.h"
#include "llmesh/rag/embedder.h"
#include "llmesh/rag/types.h"

namespace llmesh::rag {

struct RagOptions {
  std::string data_dir;
  CollectionOptions collection;
  ChunkingOptions default_chunking;  // for create requests that leave chunking unset
  HnswOptions default_hnsw;
};

class Rag {
 public:
  static absl::StatusOr<std::unique_ptr<Rag>> Open(RagOptions options);

  // dimension 0: embeds a probe text with `embedder` to learn it.
  absl::StatusOr<CollectionInfo> CreateCollection(CollectionConfig config, Embedder& embedder);
  absl::StatusOr<std::vector<CollectionInfo>> ListCollections();
  absl::StatusOr<CollectionInfo> GetCollection(const std::string& name);
  absl::Status DeleteCollection(const std::string& name);

  absl::StatusOr<UpsertResult> Upsert(const std::string& collection, const std::vector<DocumentInput>& docs,
                                      Embedder& embedder, TokenCounter& counter);
  absl::StatusOr<int32_t> DeleteDocuments(const std::string& collection, const std::vector<std::string>& ids);
  absl::StatusOr<std::vector<QueryHit>> Query(const std::string& collection, const QueryOptions& options,
                                              Embedder& embedder);

  // Saves every changed index (periodically and at shutdown).
  absl::Status SaveAll();
  absl::StatusOr<std::shared_ptr<Collection>> Find(const std::string& name);

 private:
  explicit Rag(RagOptions options) : options_(std::move(options)) {}
  std::string collections_dir() const { return options_.data_dir + "/collections"; }

  RagOptions options_;
  std::mutex mu_;  // the map; create/delete are serialised by it
  std::map<std::string, std::shared_ptr<Collection>> collections_;
};

// Names: 1..64 of [A-Za-z0-9_.-], not starting with '.' or '-'.
absl::Status ValidateCollectionName(const std::string& name);

}  // namespace llmesh::rag
