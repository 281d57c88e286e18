#include "agent_service.h"

#include "absl/strings/str_cat.h"
#include "llmesh/agent/builtin_tools.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"
#include "remote_tool.h"
#include "run_reactor.h"
#include "spdlog/spdlog.h"

namespace llmesh::agent {
namespace {

constexpr int kDefaultListLimit = 100;
constexpr int kMaxListLimit = 1000;

absl::Time DeadlineOf(grpc::CallbackServerContext* ctx, absl::Duration cap) {
  absl::Time d = absl::Now() + cap;
  auto client = ctx->deadline();
  if (client != std::chrono::system_clock::time_point::max()) d = std::min(d, absl::FromChrono(client));
  return d;
}

}  // namespace

grpc::ServerUnaryReactor* AgentServiceImpl::Unary(grpc::CallbackServerContext* ctx,
                                                  std::function<absl::Status()> fn) {
  auto* reactor = ctx->DefaultReactor();
  bool queued = rpc_pool_.Submit([reactor, fn = std::move(fn)] { reactor->Finish(rpc::ToGrpcStatus(fn())); });
  if (!queued) reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "agent request queue is full"));
  return reactor;
}

grpc::ServerWriteReactor<v1::AgentStep>* AgentServiceImpl::Run(grpc::CallbackServerContext* ctx,
                                                                const v1::AgentRunRequest* request) {
  return RunReactor::Start(agent_, run_pool_, ctx, request, limits_.max_run_timeout);
}

grpc::ServerUnaryReactor* AgentServiceImpl::GetSession(grpc::CallbackServerContext* ctx,
                                                       const v1::GetSessionRequest* request,
                                                       v1::AgentSession* response) {
  return Unary(ctx, [this, request, response]() -> absl::Status {
    if (request->session_id().empty()) return absl::InvalidArgumentError("session_id is empty");
    auto s = store_.GetSession(request->session_id(), /*with_history=*/true);
    if (!s.ok()) return s.status();
    *response = std::move(*s);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::ListSessions(grpc::CallbackServerContext* ctx,
                                                         const v1::ListSessionsRequest* request,
                                                         v1::ListSessionsResponse* response) {
  return Unary(ctx, [this, request, response]() -> absl::Status {
    int limit = request->limit();
    if (limit < 0 || limit > kMaxListLimit)
      return absl::InvalidArgumentError(absl::StrCat("limit must be in 0..", kMaxListLimit));
    auto sessions = store_.ListSessions(limit == 0 ? kDefaultListLimit : limit);
    if (!sessions.ok()) return sessions.status();
    for (auto& s : *sessions) *response->add_sessions() = std::move(s);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::DeleteSession(grpc::CallbackServerContext* ctx,
                                                          const v1::DeleteSessionRequest* request,
                                                          v1::DeleteSessionResponse*) {
  return Unary(ctx, [this, request]() -> absl::Status {
    if (request->session_id().empty()) return absl::InvalidArgumentError("session_id is empty");
    return store_.DeleteSession(request->session_id());
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::RegisterTool(grpc::CallbackServerContext* ctx,
                                                         const v1::RegisterToolRequest* request,
                                                         v1::ToolSpec* response) {
  return Unary(ctx, [this, ctx, request, response]() -> absl::Status {
    if (request->address().empty()) return absl::InvalidArgumentError("address is empty");
    if (IsBuiltinTool(request->name()))
      return absl::InvalidArgumentError(absl::StrCat("'", request->name(), "' is a built-in tool name"));
    auto spec = DescribeRemoteTool(request->address(), request->name(),
                                   DeadlineOf(ctx, limits_.describe_timeout), rpc::RequestIdOf(*ctx));
    if (!spec.ok()) return spec.status();
    if (auto st = registry_.Add(std::make_shared<RemoteTool>(*spec)); !st.ok()) return st;
    if (auto st = store_.SaveTool(*spec); !st.ok()) return st;
    spdlog::info("event=tool_registered name={} address={}", spec->name(), spec->address());
    *response = std::move(*spec);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::UnregisterTool(grpc::CallbackServerContext* ctx,
                                                           const v1::UnregisterToolRequest* request,
                                                           v1::UnregisterToolResponse*) {
  return Unary(ctx, [this, request]() -> absl::Status {
    if (request->name().empty()) return absl::InvalidArgumentError("name is empty");
    if (IsBuiltinTool(request->name()))
      return absl::InvalidArgumentError(absl::StrCat("'", request->name(), "' is a built-in tool"));
    if (auto st = registry_.Remove(request->name()); !st.ok()) return st;
    if (auto st = store_.DeleteTool(request->name()); !st.ok()) return st;
    spdlog::info("event=tool_unregistered name={}", request->name());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::ListTools(grpc::CallbackServerContext* ctx,
                                                      const v1::ListToolsRequest*, v1::ListToolsResponse* response) {
  return Unary(ctx, [this, response]() -> absl::Status {
    for (auto& s : BuiltinToolSpecs(has_rag_)) *response->add_tools() = std::move(s);
    for (auto& s : registry_.List()) *response->add_tools() = std::move(s);
    return absl::OkStatus();
  });
}

}  // namespace llmesh::agent
