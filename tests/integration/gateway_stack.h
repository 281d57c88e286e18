// Gateway stacks for integration tests, as real processes on 127.0.0.1:
// tokenizer, the gateway (gRPC + HTTP on ephemeral ports), and engine workers
// that self-register with it (--gateway), or one static worker and a backend
// the gateway fronts. Plus small HTTP helpers.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "llmesh/v1/gateway.grpc.pb.h"
#include "service_process.h"

namespace llmesh::testing {

inline std::string ModelDir() { return std::string(LLMESH_SHARED_DIR) + "/models"; }
inline std::string Bin(const std::string& name) { return std::string(LLMESH_BIN_DIR) + "/" + name; }

// llmesh-gateway with `args`, its HTTP listener on an ephemeral port whose
// number it writes to a file: read into *http_port.
inline absl::StatusOr<Service> StartGatewayProcess(const std::vector<std::string>& args, int* http_port) {
  std::string dir = MakeTempDir("gw");
  std::vector<std::string> all = {"--http-listen", "127.0.0.1:0", "--http-port-file", dir + "/http.port"};
  all.insert(all.end(), args.begin(), args.end());
  auto gw = StartService(Bin("llmesh-gateway"), all);
  if (!gw.ok()) return gw.status();
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    std::ifstream f(dir + "/http.port");
    if (f >> *http_port && *http_port > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (*http_port <= 0) return absl::DeadlineExceededError("gateway did not write its HTTP port");
  return gw;
}

struct GatewayStack {
  Service tokenizer;
  Service gateway;
  int http_port = 0;
  std::vector<std::unique_ptr<Service>> engines;
  std::unique_ptr<v1::Gateway::Stub> stub;

  std::string http_address() const { return absl::StrCat("127.0.0.1:", http_port); }

  // Starts tokenizer + gateway; `gateway_args` adds options (API keys, limits).
  absl::Status Start(const std::vector<std::string>& gateway_args) {
    auto tok = StartService(Bin("llmesh-tokenizer"), {"--model-dir", ModelDir(), "--log-level", "warn"});
    if (!tok.ok()) return tok.status();
    tokenizer = std::move(*tok);
    // The gateway's first request goes to the tokenizer: have it serving
    // first, or that request can find the connection still in backoff.
    if (auto st = WaitForServing(tokenizer.address(), absl::Seconds(20)); !st.ok()) return st;
    std::vector<std::string> args = {"--tokenizer", tokenizer.address(), "--heartbeat-interval", "200ms",
                                     "--heartbeat-timeout", "1500ms", "--health-interval", "300ms",
                                     "--model", "stories260K", "--log-level", "debug"};
    args.insert(args.end(), gateway_args.begin(), gateway_args.end());
    auto gw = StartGatewayProcess(args, &http_port);
    if (!gw.ok()) return gw.status();
    gateway = std::move(*gw);
    stub = v1::Gateway::NewStub(rpc::CreateChannel(gateway.address()));
    return WaitForServing(gateway.address(), absl::Seconds(20));
  }

  // An engine worker registering with the gateway.
  absl::StatusOr<Service*> AddEngine(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--model-dir", ModelDir(), "--model", "stories260K", "--threads", "1",
                                     "--kv-budget-mb", "16", "--gateway", gateway.address(), "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto e = StartService(Bin("llmesh-engine"), args);
    if (!e.ok()) return e.status();
    engines.push_back(std::make_unique<Service>(std::move(*e)));
    return engines.back().get();
  }

  // Healthy workers serving stories260K, as the gateway sees them.
  int Workers(const std::string& api_key = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + api_key);
    v1::GatewayListModelsResponse resp;
    if (!stub->ListModels(&ctx, v1::GatewayListModelsRequest(), &resp).ok()) return -1;
    for (const auto& m : resp.models())
      if (m.name() == "stories260K") return m.workers();
    return 0;
  }
  absl::Status WaitForWorkers(int n, const std::string& api_key = "", absl::Duration timeout = absl::Seconds(30)) {
    absl::Time deadline = absl::Now() + timeout;
    int got = 0;
    while (absl::Now() < deadline) {
      got = Workers(api_key);
      if (got == n) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return absl::DeadlineExceededError(absl::StrCat("gateway sees ", got, " workers, want ", n));
  }
};

// A gateway in front of a backend service (rag-svc, llmesh-agent): a
// tokenizer and one standalone engine serving stories260K, which the backend
// generates or embeds with and the gateway routes to as a static worker; then
// the backend; then the gateway, which needs the backend's address.
struct BackendStack {
  Service tokenizer;
  Service engine;
  Service backend;
  Service gateway;
  int http_port = 0;
  std::unique_ptr<v1::Gateway::Stub> stub;

  // The backend runs as `binary backend_args... --engine E --tokenizer T` and
  // serves within `ready`; the gateway gets `backend_option BACKEND gateway_args...`.
  absl::Status Start(const std::string& binary, const std::vector<std::string>& backend_args, absl::Duration ready,
                     const std::string& backend_option, const std::vector<std::string>& gateway_args = {}) {
    auto tok = StartService(Bin("llmesh-tokenizer"), {"--model-dir", ModelDir(), "--log-level", "warn"});
    if (!tok.ok()) return tok.status();
    tokenizer = std::move(*tok);
    auto eng = StartService(Bin("llmesh-engine"), {"--model-dir", ModelDir(), "--model", "stories260K", "--threads",
                                                   "1", "--kv-budget-mb", "16", "--log-level", "warn"});
    if (!eng.ok()) return eng.status();
    engine = std::move(*eng);
    if (auto st = WaitForServing(engine.address(), absl::Seconds(30)); !st.ok()) return st;

    std::vector<std::string> args = backend_args;
    args.insert(args.end(), {"--engine", engine.address(), "--tokenizer", tokenizer.address()});
    auto b = StartService(Bin(binary), args);
    if (!b.ok()) return b.status();
    backend = std::move(*b);
    if (auto st = WaitForServing(backend.address(), ready); !st.ok()) return st;

    args = {"--tokenizer", tokenizer.address(), "--workers", engine.address(), backend_option, backend.address(),
            "--model", "stories260K", "--log-level", "debug"};
    args.insert(args.end(), gateway_args.begin(), gateway_args.end());
    auto gw = StartGatewayProcess(args, &http_port);
    if (!gw.ok()) return gw.status();
    gateway = std::move(*gw);
    if (auto st = WaitForServing(gateway.address(), absl::Seconds(20)); !st.ok()) return st;
    stub = v1::Gateway::NewStub(rpc::CreateChannel(gateway.address()));
    return absl::OkStatus();
  }
};

inline v1::EngineStats EngineStatsOf(const std::string& address) {
  auto stub = v1::EngineService::NewStub(rpc::CreateChannel(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::EngineStats s;
  (void)stub->GetStats(&ctx, v1::GetStatsRequest(), &s);
  return s;
}

// The "data: " payloads of an SSE body up to "[DONE]"; *done tells whether it came.
inline std::vector<std::string> SseData(const std::string& body, bool* done = nullptr) {
  std::vector<std::string> out;
  if (done) *done = false;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    size_t end = body.find("\n\n", pos);
    std::string payload = body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (payload == "[DONE]") {
      if (done) *done = true;
      break;
    }
    out.push_back(std::move(payload));
  }
  return out;
}

// A raw HTTP/1.1 request on a socket: the test controls when to hang up.
class RawHttp {
 public:
  explicit RawHttp(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawHttp() { Close(); }
  bool Post(const std::string& path, const std::string& body, const std::string& auth = "") {
    std::string req = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n",
                                   auth.empty() ? "" : absl::StrCat("Authorization: Bearer ", auth, "\r\n"),
                                   "Content-Length: ", body.size(), "\r\n\r\n", body);
    return connected_ && send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  }
  // Reads until `needle` has been seen (or the peer closes / timeout).
  std::string ReadUntil(const std::string& needle, absl::Duration timeout = absl::Seconds(30)) {
    absl::Time deadline = absl::Now() + timeout;
    timeval tv{0, 100000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[4096];
    while (absl::Now() < deadline && data_.find(needle) == std::string::npos) {
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) break;
      if (n > 0) data_.append(buf, static_cast<size_t>(n));
    }
    return data_;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string data_;
};

}  // namespace llmesh::testing
