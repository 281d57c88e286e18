// rag_search's Retriever over rag-svc Query, with the run's deadline and
// cancellation.
#pragma once

#include <memory>
#include <string>

#include "llmesh/agent/builtin_tools.h"
#include "llmesh/v1/rag.grpc.pb.h"

namespace llmesh::agent {

class RagRetriever : public Retriever {
 public:
  explicit RagRetriever(const std::string& target);
  absl::StatusOr<v1::QueryResponse> Query(const v1::QueryRequest& request, const ToolContext& ctx) override;

 private:
  std::string target_;
  std::unique_ptr<v1::RagService::Stub> stub_;
};

}  // namespace llmesh::agent
