// Plain data the rag library speaks (the server maps rag.proto onto these).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace llmesh::rag {

enum class Metric { kCosine, kInnerProduct };
enum class DocFormat { kPlain, kMarkdown };
enum class RetrievalMode { kDense, kLexical, kHybrid };

struct ChunkingOptions {
  int32_t chunk_tokens = 256;   // target chunk size, tokens of the embedding model
  int32_t overlap_tokens = 32;  // tokens repeated from the end of the previous chunk
};

struct HnswOptions {
  int32_t m = 16;
  int32_t ef_construction = 200;
  int32_t ef_search = 64;
};

struct CollectionConfig {
  std::string name;
  std::string embedding_model;
  int32_t dimension = 0;  // 0 in a create request: ask the engine
  Metric metric = Metric::kCosine;
  ChunkingOptions chunking;
  HnswOptions hnsw;
};

struct CollectionInfo {
  CollectionConfig config;
  int64_t document_count = 0;
  int64_t chunk_count = 0;
  int64_t size_bytes = 0;  // database (+ WAL) + index files
};

using Metadata = std::map<std::string, std::string>;

struct DocumentInput {
  std::string id;
  std::string text;
  DocFormat format = DocFormat::kPlain;
  std::string source;
  Metadata metadata;
};

struct UpsertResult {
  int32_t documents = 0;
  int32_t chunks = 0;
};

// key's value is one of `values` (one value: equality). Filters are ANDed.
struct MetadataFilter {
  std::string key;
  std::vector<std::string> values;
};

struct QueryOptions {
  std::string query;
  int32_t top_k = 5;
  RetrievalMode mode = RetrievalMode::kHybrid;
  std::vector<MetadataFilter> filters;
};

struct QueryHit {
  int64_t chunk_id = 0;
  std::string document_id;
  std::string text;
  double score = 0;  // higher is better
  std::string source;
  Metadata metadata;
};

// Limits on untrusted input.
inline constexpr int32_t kMaxTopK = 100;
inline constexpr size_t kMaxDocumentIdBytes = 512;
inline constexpr size_t kMaxMetadataEntries = 64;
inline constexpr int32_t kMaxDimension = 65536;

}  // namespace llmesh::rag
