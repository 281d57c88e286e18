// The OpenAI-compatible HTTP API on the gateway process (cpp-httplib):
//   POST /v1/chat/completions, POST /v1/completions  (stream: true -> SSE, ending "data: [DONE]")
//   POST /v1/embeddings, GET /v1/models, GET /health (public), GET /metrics (Prometheus text)
//   POST /v1/rag/query, POST /v1/rag/chat            (http_rag_routes.cc, rag_json.h)
//   POST /v1/agents/run                              (http_agent_routes.cc, agent_json.h)
// Requests run through the same pipeline as gRPC (Generation); status codes
// and error bodies as OpenAI clients expect. Plain HTTP reads each request
// whole in a front (http_front.h) before a worker thread handles it; HTTPS
// is cpp-httplib's own (a worker per connection from the TLS handshake on).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "generation.h"
#include "llmesh/gateway/auth.h"
#include "llmesh/gateway/openai_json.h"

namespace httplib {
class Server;
class ThreadPool;
struct Request;
struct Response;
}

namespace llmesh::gateway {

class HttpFront;

struct HttpOptions {
  std::string listen = "0.0.0.0:8080";
  std::string tls_cert_file, tls_key_file;  // both set: HTTPS
  size_t max_body_bytes = 8 << 20;
  int threads = 64;
  std::string port_file;
  absl::Duration header_timeout = absl::Seconds(10);  // to receive a request's head
  absl::Duration body_timeout = absl::Seconds(30);    // then its body
  int max_connections = 4096;
  int max_connections_per_client = 256;
  // Accepted connections the kernel queues for the listener (capped by
  // net.core.somaxconn); cpp-httplib's 5 reset clients in a burst.
  int backlog = 1024;
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
  std::unique_ptr<httplib::ThreadPool> workers_;  // plain HTTP: requests from the front
  std::unique_ptr<HttpFront> front_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
};

}  // namespace llmesh::gateway
