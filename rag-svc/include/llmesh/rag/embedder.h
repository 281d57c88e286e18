// What the rag library needs from other services, as interfaces: embeddings
// (engine-svc Embed) and token counts (tokenizer-svc Tokenize). The server
// binds gRPC implementations to each request (its deadline, cancellation);
// tests use fakes. RetryingEmbedder is the retry decorator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace llmesh::rag {

class Embedder {
 public:
  virtual ~Embedder() = default;
  // One embedding per text, in order, all of the same dimension.
  virtual absl::StatusOr<std::vector<std::vector<float>>> Embed(const std::string& model,
                                                                const std::vector<std::string>& texts) = 0;
};

class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  // Token count of each text with `model`'s tokenizer (no special tokens).
  virtual absl::StatusOr<std::vector<int32_t>> Count(const std::string& model,
                                                     const std::vector<std::string>& texts) = 0;
};

struct RetryPolicy {
  int max_attempts = 4;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  double multiplier = 2.0;
  absl::Duration max_backoff = absl::Seconds(2);
};

// Retries UNAVAILABLE / DEADLINE_EXCEEDED (a worker restarting, a transient
// overload) with exponential backoff; other errors pass through at once.
// `deadline` (the caller's) bounds the whole thing: no sleep past it.
class RetryingEmbedder : public Embedder {
 public:
  RetryingEmbedder(Embedder& inner, RetryPolicy policy, absl::Time deadline = absl::InfiniteFuture())
      : inner_(inner), policy_(policy), deadline_(deadline) {}
  absl::StatusOr<std::vector<std::vector<float>>> Embed(const std::string& model,
                                                        const std::vector<std::string>& texts) override;
  int attempts() const { return attempts_; }

 private:
  Embedder& inner_;
  RetryPolicy policy_;
  absl::Time deadline_;
  int attempts_ = 0;
};

// Embeds `texts` in batches of `batch_size` and checks every vector: one per
// text, all of one dimension, finite. Empty input gives an empty result.
absl::StatusOr<std::vector<std::vector<float>>> EmbedBatched(Embedder& embedder, const std::string& model,
                                                             const std::vector<std::string>& texts,
                                                             int batch_size);

}  // namespace llmesh::rag
