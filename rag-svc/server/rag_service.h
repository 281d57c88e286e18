// rag.proto over the rag library. Each RPC runs on the WorkPool (its work
// blocks: downstream calls, SQLite commits) and finishes its reactor from
// there; the library validates input and returns Status, mapped here once. Until storage is open (set_rag), every RPC
// answers UNAVAILABLE.
#pragma once

#include <atomic>

#include "downstream.h"
#include "llmesh/common/work_pool.h"
#include "llmesh/rag/rag.h"
#include "llmesh/v1/rag.grpc.pb.h"

namespace llmesh::rag {

class RagServiceImpl final : public v1::RagService::CallbackService {
 public:
  RagServiceImpl(Downstream& downstream, WorkPool& pool, RetryPolicy retry)
      : downstream_(downstream), pool_(pool), retry_(retry) {}
  void set_rag(Rag* rag) { rag_.store(rag); }

  grpc::ServerUnaryReactor* CreateCollection(grpc::CallbackServerContext*, const v1::CreateCollectionRequest*,
                                             v1::Collection*) override;
  grpc::ServerUnaryReactor* ListCollections(grpc::CallbackServerContext*, const v1::ListCollectionsRequest*,
                                            v1::ListCollectionsResponse*) override;
  grpc::ServerUnaryReactor* GetCollection(grpc::CallbackServerContext*, const v1::GetCollectionRequest*,
                                          v1::Collection*) override;
  grpc::ServerUnaryReactor* DeleteCollection(grpc::CallbackServerContext*, const v1::DeleteCollectionRequest*,
                                             v1::DeleteCollectionResponse*) override;
  grpc::ServerUnaryReactor* Upsert(grpc::CallbackServerContext*, const v1::UpsertRequest*,
                                   v1::UpsertResponse*) override;
  grpc::ServerUnaryReactor* DeleteDocuments(grpc::CallbackServerContext*, const v1::DeleteDocumentsRequest*,
                                            v1::DeleteDocumentsResponse*) override;
  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext*, const v1::QueryRequest*,
                                  v1::QueryResponse*) override;

 private:
  // Runs `fn(rag)` on the pool and finishes with its status.
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, std::function<absl::Status(Rag&)> fn);

  Downstream& downstream_;
  WorkPool& pool_;
  RetryPolicy retry_;
  std::atomic<Rag*> rag_{nullptr};
};

}  // namespace llmesh::rag
