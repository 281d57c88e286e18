// gateway.proto over the generation pipeline (callback API, one small reactor
// per streaming RPC), and the WorkerRegistry that engine workers register with.
#pragma once

#include "generation.h"
#include "llmesh/gateway/auth.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::gateway {

class GatewayServiceImpl final : public v1::Gateway::CallbackService {
 public:
  GatewayServiceImpl(GatewayContext& gw, const ApiKeys& keys) : gw_(gw), keys_(keys) {}

  grpc::ServerWriteReactor<v1::GatewayGenerateResponse>* Generate(grpc::CallbackServerContext* ctx,
                                                                   const v1::GatewayGenerateRequest* req) override;
  grpc::ServerWriteReactor<v1::GatewayGenerateResponse>* Chat(grpc::CallbackServerContext* ctx,
                                                               const v1::ChatRequest* req) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx, const v1::GatewayEmbedRequest* req,
                                  v1::GatewayEmbedResponse* resp) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx, const v1::TokenizeRequest* req,
                                     v1::TokenizeResponse* resp) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx, const v1::GatewayListModelsRequest* req,
                                       v1::GatewayListModelsResponse* resp) override;

  // Retrieval: rag-svc's CreateCollection / Upsert / Query proxied; RagChat
  // retrieves, then runs the chat (generation.h).
  grpc::ServerUnaryReactor* CreateCollection(grpc::CallbackServerContext* ctx, const v1::CreateCollectionRequest* req,
                                             v1::Collection* resp) override;
  grpc::ServerUnaryReactor* Upsert(grpc::CallbackServerContext* ctx, const v1::UpsertRequest* req,
                                   v1::UpsertResponse* resp) override;
  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx, const v1::QueryRequest* req,
                                  v1::QueryResponse* resp) override;
  grpc::ServerWriteReactor<v1::GatewayGenerateResponse>* RagChat(grpc::CallbackServerContext* ctx,
                                                                  const v1::RagChatRequest* req) override;

  // agent-svc Run, step by step (agent_run.h).
  grpc::ServerWriteReactor<v1::AgentStep>* AgentRun(grpc::CallbackServerContext* ctx,
                                                     const v1::AgentRunRequest* req) override;

 private:
  absl::Status Authorize(grpc::CallbackServerContext* ctx) const;
  grpc::ServerWriteReactor<v1::GatewayGenerateResponse>* Stream(grpc::CallbackServerContext* ctx, GenerateJob job,
                                                                const char* route);
  // A unary call to rag-svc: `call` starts it with the downstream context and
  // the completion callback.
  template <typename Call>
  grpc::ServerUnaryReactor* ProxyToRag(grpc::CallbackServerContext* ctx, const char* route, const char* what, Call call);

  GatewayContext& gw_;
  const ApiKeys& keys_;
};

class WorkerRegistryImpl final : public v1::WorkerRegistry::CallbackService {
 public:
  WorkerRegistryImpl(WorkerPool& pool, Router& router, absl::Duration heartbeat_interval)
      : pool_(pool), router_(router), heartbeat_interval_(heartbeat_interval) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx, const v1::RegisterWorkerRequest* req,
                                     v1::RegisterWorkerResponse* resp) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx, const v1::HeartbeatRequest* req,
                                      v1::HeartbeatResponse* resp) override;
  grpc::ServerUnaryReactor* Deregister(grpc::CallbackServerContext* ctx, const v1::DeregisterWorkerRequest* req,
                                       v1::DeregisterWorkerResponse* resp) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx, const v1::ListWorkersRequest* req,
                                        v1::ListWorkersResponse* resp) override;

 private:
  WorkerPool& pool_;
  Router& router_;
  absl::Duration heartbeat_interval_;
};

}  // namespace llmesh::gateway
