// The dense (vector) index: hnswlib HNSW over chunk embeddings, labelled by
// chunk id. Cosine is inner product over L2-normalised vectors. The index is a
// cache of what SQLite holds: Save writes it with a watermark (the highest
// chunk id applied) and a checksummed sidecar; Load accepts only a file whose
// sidecar matches, so a torn or foreign file means "rebuild", never a crash.
// hnswlib throws; every exception stops here and becomes a Status.
//
// Thread safety: Search is safe concurrently with Search; everything else
// needs exclusive access (the collection's lock provides it).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/rag/types.h"

namespace hnswlib {
template <typename T>
class SpaceInterface;
}  // namespace hnswlib

namespace llmesh::rag {

class HnswGraph;

struct DenseHit {
  int64_t label = 0;
  float score = 0;  // cosine similarity / inner product: higher is better
};

class DenseIndex {
 public:
  static absl::StatusOr<std::unique_ptr<DenseIndex>> Create(int32_t dim, Metric metric, HnswOptions options,
                                                            size_t capacity);
  // Loads `path` if its sidecar (`path`.meta) matches the file, the dimension
  // and the metric; *watermark gets the saved watermark.
  static absl::StatusOr<std::unique_ptr<DenseIndex>> Load(const std::string& path, int32_t dim, Metric metric,
                                                          HnswOptions options, int64_t* watermark);
  ~DenseIndex();

  // Writes `path` and its sidecar atomically enough: each via a temp file,
  // fsync and rename; a crash between the two leaves a mismatch => rebuild.
  absl::Status Save(const std::string& path, int64_t watermark) const;

  // Adds (or replaces) `label`; grows the index as needed. Replacing, or
  // re-adding a removed label, leaves the old node as a tombstone.
  absl::Status Add(int64_t label, std::span<const float> vec);
  // Marks `label` deleted; unknown labels are ignored.
  absl::Status Remove(int64_t label);
  // The min(k, live_count()) nearest labels, best first. Exact when k >=
  // live_count() (a full scan) or when the graph walk comes back short.
  absl::StatusOr<std::vector<DenseHit>> Search(std::span<const float> query, size_t k) const;

  // Labels present and not deleted.
  std::vector<int64_t> Labels() const;
  size_t live_count() const;
  size_t deleted_count() const;
  int32_t dim() const { return dim_; }
  void SetEf(int32_t ef);

 private:
  DenseIndex(int32_t dim, Metric metric);
  std::vector<float> Prepare(std::span<const float> v) const;
  // Brute force over every live element (q already prepared), best first.
  std::vector<DenseHit> Exact(const std::vector<float>& q, size_t k) const;

  int32_t dim_;
  Metric metric_;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  std::unique_ptr<HnswGraph> hnsw_;
};

// Scales `v` to unit L2 norm (left alone when zero).
void Normalize(std::span<float> v);

}  // namespace llmesh::rag
