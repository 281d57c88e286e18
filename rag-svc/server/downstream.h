// The rag library's Embedder and TokenCounter over gRPC: engine-svc Embed and
// tokenizer-svc Tokenize. One object per incoming request, bound to its
// server context so every downstream call carries a deadline derived from the
// client's (rpc::ChildContext) and is cancelled with it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "llmesh/rag/embedder.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"

namespace llmesh::rag {

// Stubs shared by all requests. Several engine targets are used round-robin,
// so a retry after UNAVAILABLE goes to the next worker.
class Downstream {
 public:
  Downstream(const std::vector<std::string>& engine_targets, const std::string& tokenizer_target,
             absl::Duration max_timeout);
  v1::EngineService::Stub& NextEngine();
  v1::TokenizerService::Stub& tokenizer() { return *tokenizer_; }
  absl::Duration max_timeout() const { return max_timeout_; }

 private:
  std::vector<std::unique_ptr<v1::EngineService::Stub>> engines_;
  std::unique_ptr<v1::TokenizerService::Stub> tokenizer_;
  std::atomic<uint64_t> next_{0};
  absl::Duration max_timeout_;
};

class GrpcEmbedder : public Embedder {
 public:
  // `parent` may be null (no client: start-up work); then max_timeout applies.
  GrpcEmbedder(Downstream& downstream, grpc::CallbackServerContext* parent) : ds_(downstream), parent_(parent) {}
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
