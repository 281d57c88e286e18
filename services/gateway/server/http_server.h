// The OpenAI-compatible HTTP API on the gateway process (cpp-httplib):
//   POST /v1/chat/completions, POST /v1/completions  (stream: true -> SSE, ending "data: [DONE]")
//   POST /v1/embeddings, GET /v1/models, GET /health (public), GET /metrics (Prometheus text)
//   POST /v1/rag/query, POST /v1/rag/chat            (http_rag_routes.cc, rag_json.h)
//   POST /v1/agents/run                              (http_agent_routes.cc, agent_json.h)
// Requests run through the same pipeline as gRPC (Generation); status codes
// and error bodies as OpenAI clients expect.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "generation.h"
#include "llmesh/gateway/auth.h"
#include "llmesh/gateway/openai_json.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace llmesh::gateway {

struct HttpOptions {
  std::string listen = "0.0.0.0:8080";
  std::string tls_cert_file, tls_key_file;  // both set: HTTPS
  size_t max_body_bytes = 8 << 20;
  int threads = 64;
  std::string port_file;
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, GatewayContext& gw, const ApiKeys& keys);
  ~HttpServer();

  // Binds and starts serving on a background thread.
  absl::Status Start();
  int port() const { return port_; }
  // The API keys apply, and (generation routes) draining refuses new work.
  using Handler = std::function<void(const httplib::Request&, httplib::Response&, const std::string& request_id)>;
  // New requests get 503 from now on; in-flight ones continue.
  void Drain() { draining_ = true; }
  void Stop();

 private:
  void Routes();
  void RagRoutes();    // http_rag_routes.cc
  void AgentRoutes();  // http_agent_routes.cc
  // Auth, drain, request id header, metrics and the access log around `fn`.
  std::function<void(const httplib::Request&, httplib::Response&)> Guard(const char* route, bool generation,
                                                                          Handler fn);
  // A parsed generation request through Generation, answered as an OpenAI
  // object or, with stream, as SSE chunks.
  void ServeGeneration(const httplib::Request& req, httplib::Response& res, const std::string& rid, OpenAiRequest r,
                       bool citations);

  HttpOptions options_;
  GatewayContext& gw_;
  const ApiKeys& keys_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
};

}  // namespace llmesh::gateway
