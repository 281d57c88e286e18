// The rag library's Embedder and TokenCounter over gRPC: engine-svc Embed and
// tokenizer-svc Tokenize. One object per incoming request, bound to its
// server context so every downstream call carries a deadline derived from the
// client's (rpc::ChildContext) and is cancelled with it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "engine_pool.h"
#include "llmesh/rag/embedder.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"

namespace llmesh::rag {

// What all requests share: the engine workers (engine_pool.h) and the
// tokenizer's stub.
class Downstream {
 public:
  Downstream(EnginePoolOptions engines, const std::string& tokenizer_target, absl::Duration max_timeout);
  EnginePool& engines() { return engines_; }
  v1::TokenizerService::Stub& tokenizer() { return *tokenizer_; }
  absl::Duration max_timeout() const { return max_timeout_; }

 private:
  EnginePool engines_;
  std::unique_ptr<v1::TokenizerService::Stub> tokenizer_;
  absl::Duration max_timeout_;
};

class GrpcEmbedder : public Embedder {
 public:
  // `parent` may be null (no client: start-up work); then max_timeout applies.
  GrpcEmbedder(Downstream& downstream, grpc::CallbackServerContext* parent) : ds_(downstream), parent_(parent) {}
  // On the least busy worker serving the model; after UNAVAILABLE, on
  // another one, until each has been tried.
  absl::StatusOr<std::vector<std::vector<float>>> Embed(const std::string& model,
                                                        const std::vector<std::string>& texts) override;

 private:
  Downstream& ds_;
  grpc::CallbackServerContext* parent_;
};

class GrpcTokenCounter : public TokenCounter {
 public:
  GrpcTokenCounter(Downstream& downstream, grpc::CallbackServerContext* parent) : ds_(downstream), parent_(parent) {}
  // Tokenize calls for all texts in flight at once (in waves), then gathered.
  absl::StatusOr<std::vector<int32_t>> Count(const std::string& model, const std::vector<std::string>& texts) override;

 private:
  Downstream& ds_;
  grpc::CallbackServerContext* parent_;
};

}  // namespace llmesh::rag
