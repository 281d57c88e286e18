// POST /v1/rag/query and POST /v1/rag/chat (bodies: rag_json.h).
#include "downstream.h"
#include "http_common.h"
#include "http_server.h"
#include "llmesh/gateway/rag_json.h"

namespace llmesh::gateway {

void HttpServer::RagRoutes() {
  auto& s = *server_;
  s.Post("/v1/rag/query", Guard("/v1/rag/query", true, [this](const httplib::Request& req, httplib::Response& res,
                                                               const std::string& rid) {
           std::string param;
           auto query = ParseRagQueryRequest(req.body, &param);
           if (!query.ok()) return SendError(res, query.status(), param);
           if (!gw_.rag)
             return SendError(res, absl::UnavailableError("retrieval is not configured on this gateway (set its rag address)"));
           auto ctx = DownstreamContext(absl::Now() + gw_.request_timeout, rid);
           v1::QueryResponse resp;
           grpc::Status st = gw_.rag->Query(ctx.get(), *query, &resp);
           if (!st.ok()) return SendError(res, DownstreamError(st, "rag service (Query)"));
           res.set_content(RagQueryResponseJson(resp), "application/json");
         }));

  s.Post("/v1/rag/chat", Guard("/v1/rag/chat", true, [this](const httplib::Request& req, httplib::Response& res,
                                                             const std::string& rid) {
           std::string param;
           auto parsed = ParseRagChatRequest(req.body, gw_.default_model, &param);
           if (!parsed.ok()) return SendError(res, parsed.status(), param);
           ServeGeneration(req, res, rid, std::move(*parsed), /*citations=*/true);
         }));
}

}  // namespace llmesh::gateway
