// The OpenAI-compatible HTTP API on the gateway process (cpp-httplib):
//   POST /v1/chat/completions, POST /v1/completions  (stream: true -> SSE, ending "data: [DONE]")
//   POST /v1/embeddings, GET /v1/models, GET /health (public), GET /metrics (Prometheus text)
// Requests run through the same pipeline as gRPC (Generation); status codes
// and error bodies as OpenAI clients expect.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "generation.h"
#include "llmesh/gateway/auth.h"

namespace httplib {
class Server;
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
  // New requests get 503 from now on; in-flight ones continue.
  void Drain() { draining_ = true; }
  void Stop();

 private:
  void Routes();

  HttpOptions options_;
  GatewayContext& gw_;
  const ApiKeys& keys_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
};

}  // namespace llmesh::gateway
