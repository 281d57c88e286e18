// agent.proto's AgentService over the agent library. Run streams from a
// worker of the run pool (one thread per run in progress, bounded queue);
// the other RPCs touch SQLite or call a remote tool's Describe, so they run
// on a small pool of their own and never wait behind long runs. Errors are
// mapped to gRPC once, here.
#pragma once

#include <functional>

#include "absl/time/time.h"
#include "llmesh/agent/agent.h"
#include "llmesh/agent/store.h"
#include "llmesh/agent/tool_registry.h"
#include "llmesh/common/work_pool.h"
#include "llmesh/v1/agent.grpc.pb.h"

namespace llmesh::agent {

struct ServiceLimits {
  absl::Duration max_run_timeout = absl::Minutes(30);  // cap on a Run's deadline
  absl::Duration describe_timeout = absl::Seconds(10); // RegisterTool's Describe call
};

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  AgentServiceImpl(Agent& agent, AgentStore& store, ToolRegistry& registry, bool has_rag, WorkPool& run_pool,
                   WorkPool& rpc_pool, ServiceLimits limits)
      : agent_(agent), store_(store), registry_(registry), has_rag_(has_rag), run_pool_(run_pool),
        rpc_pool_(rpc_pool), limits_(limits) {}

  grpc::ServerWriteReactor<v1::AgentStep>* Run(grpc::CallbackServerContext* ctx,
                                                const v1::AgentRunRequest* request) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* ctx, const v1::GetSessionRequest* request,
                                       v1::AgentSession* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* ctx, const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSession(grpc::CallbackServerContext* ctx, const v1::DeleteSessionRequest* request,
                                          v1::DeleteSessionResponse* response) override;
  grpc::ServerUnaryReactor* RegisterTool(grpc::CallbackServerContext* ctx, const v1::RegisterToolRequest* request,
                                         v1::ToolSpec* response) override;
  grpc::ServerUnaryReactor* UnregisterTool(grpc::CallbackServerContext* ctx,
                                           const v1::UnregisterToolRequest* request,
                                           v1::UnregisterToolResponse* response) override;
  grpc::ServerUnaryReactor* ListTools(grpc::CallbackServerContext* ctx, const v1::ListToolsRequest* request,
                                      v1::ListToolsResponse* response) override;

 private:
  // Runs `fn` on the RPC pool and finishes with its status.
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, std::function<absl::Status()> fn);

  Agent& agent_;
  AgentStore& store_;
  ToolRegistry& registry_;
  bool has_rag_;
  WorkPool& run_pool_;
  WorkPool& rpc_pool_;
  ServiceLimits limits_;
};

}  // namespace llmesh::agent
