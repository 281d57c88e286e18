// Token-aware chunking. Sections (from ParseDocument) are cut into sentences;
// sentences are counted in tokens of the embedding model (TokenCounter) and
// packed greedily into chunks of at most chunk_tokens. A chunk prefers to end
// at a paragraph boundary (when that keeps it at least half full), else at a
// sentence boundary; a sentence longer than a chunk is cut at words. The next
// chunk starts with the previous one's last sentences, up to overlap_tokens.
// Chunks never span sections; each starts with its section's heading.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/rag/embedder.h"
#include "llmesh/rag/markdown.h"
#include "llmesh/rag/types.h"

namespace llmesh::rag {

struct Chunk {
  std::string text;
  int32_t n_tokens = 0;  // sum of its pieces' counts (token counts are near-additive)
};

// Sentences of a paragraph: cut after . ! ? (and closing quotes/brackets)
// followed by a space and a character that is not lowercase.
std::vector<std::string> SplitSentences(std::string_view paragraph);

class Chunker {
 public:
  explicit Chunker(ChunkingOptions options);
  absl::StatusOr<std::vector<Chunk>> Split(const std::vector<Section>& sections, TokenCounter& counter,
                                           const std::string& model) const;

 private:
  ChunkingOptions options_;
};

// Defaults filled in and ranges checked (chunk_tokens 16..8192, overlap < chunk/2).
absl::StatusOr<ChunkingOptions> ValidateChunking(ChunkingOptions options);

}  // namespace llmesh::rag
