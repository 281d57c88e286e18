#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <future>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client_connection.h"
#include "embed.h"
#include "http_common.h"
#include "http_front.h"
#include "llmesh/common/logging.h"
#include "llmesh/gateway/errors.h"
#include "llmesh/gateway/openai_json.h"
#include "spdlog/spdlog.h"

namespace llmesh::gateway {

void SendError(httplib::Response& res, const absl::Status& st, const std::string& param) {
  res.status = HttpStatusOf(st.code());
  if (st.code() == absl::StatusCode::kResourceExhausted) res.set_header("Retry-After", "1");
  if (st.code() == absl::StatusCode::kUnauthenticated) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(OpenAiErrorBody(st, param), "application/json");
}

std::string RequestIdOf(const httplib::Request& req) {
  std::string id = req.get_header_value("x-request-id");
  if (id.empty() || id.size() > 128) return NewRequestId();
  for (char c : id)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return NewRequestId();
  return id;
}

namespace {

// Generation responses handed from the strand to the HTTP handler thread.
class BlockingSink : public GenerationSink, public BlockingQueue<v1::GatewayGenerateResponse> {
 public:
  void OnResponse(v1::GatewayGenerateResponse r) override { Push(std::move(r)); }
  void OnFinish(const absl::Status& st) override { Close(st); }
};

// Runs an accepted socket's task on the accepting thread: the task only
// hands the socket to the front, which never blocks.
class InlineQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

// cpp-httplib's listener, which listens with a backlog of 5 (compiled into
// Debian's library), given a longer one: listen(2) again on a listening
// socket sets its backlog.
template <typename Base>
class Listener : public Base {
 public:
  using Base::Base;
  bool SetBacklog(int backlog) { return ::listen(this->svr_sock_, backlog) == 0; }
};

// A request the front read whole: cpp-httplib reads it from the buffer and
// writes the answer to the (non-blocking) socket.
class BufferedStream : public httplib::Stream {
 public:
  BufferedStream(int fd, const std::string& bytes, absl::Duration write_timeout)
      : fd_(fd), bytes_(bytes), write_timeout_ms_(static_cast<int>(absl::ToInt64Milliseconds(write_timeout))) {}

  bool is_readable() const override { return read_ < bytes_.size(); }
  bool is_writable() const override {
    pollfd p{fd_, POLLOUT | POLLRDHUP, 0};
    return poll(&p, 1, write_timeout_ms_) > 0 && (p.revents & POLLOUT) &&
           !(p.revents & (POLLHUP | POLLERR | POLLRDHUP));
  }
  ssize_t read(char* ptr, size_t size) override {
    size_t n = std::min(size, bytes_.size() - read_);
    memcpy(ptr, bytes_.data() + read_, n);
    read_ += n;
    return static_cast<ssize_t>(n);
  }
  // All of it, as a blocking socket would: cpp-httplib writes a response's
  // head in one call and does not retry a short write there.
  ssize_t write(const char* ptr, size_t size) override {
    size_t sent = 0;
    while (sent < size) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, write_timeout_ms_) <= 0 || !(p.revents & POLLOUT)) return -1;
      ssize_t n = send(fd_, ptr + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
      if (n > 0) sent += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Endpoint(getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override { Endpoint(getsockname, ip, port); }
  // cpp-httplib 0.11 uses this only to answer 500 for sockets at or above
  // FD_SETSIZE, which its own select() calls cannot watch; this stream makes
  // none, so such sockets are reported as none.
  socket_t socket() const override { return fd_ < FD_SETSIZE ? fd_ : INVALID_SOCKET; }

 private:
  void Endpoint(int (*name)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof(a);
    char buf[INET6_ADDRSTRLEN] = {};
    if (name(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
    if (a.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(a).sin_addr, buf, sizeof(buf));
      port = ntohs(reinterpret_cast<sockaddr_in&>(a).sin_port);
    } else if (a.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(a).sin6_addr, buf, sizeof(buf));
      port = ntohs(reinterpret_cast<sockaddr_in6&>(a).sin6_port);
    }
    ip = buf;
  }

  int fd_;
  const std::string& bytes_;
  size_t read_ = 0;
  int write_timeout_ms_;
};

// Plain HTTP: accepted sockets go to the front, and the requests it reads
// whole come back to Serve on a worker thread.
class FrontedServer : public Listener<httplib::Server> {
 public:
  void SetFront(HttpFront* front) { front_ = front; }
  // Whether the connection stays open for another request.
  bool Serve(const FrontRequest& r, absl::Duration write_timeout) {
    BufferedStream strm(r.fd, r.bytes, write_timeout);
    bool closed = false;
    return process_request(strm, /*close_connection=*/false, closed, nullptr) && !closed;
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    front_->Adopt(sock);
    return true;
  }

  HttpFront* front_ = nullptr;
};

constexpr absl::Duration kWriteTimeout = absl::Seconds(10);

}  // namespace

HttpServer::HttpServer(HttpOptions options, GatewayContext& gw, const ApiKeys& keys)
    : options_(std::move(options)), gw_(gw), keys_(keys) {}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  bool tls = !options_.tls_cert_file.empty() || !options_.tls_key_file.empty();
  int threads = options_.threads < 4 ? 4 : options_.threads;
  std::function<bool(int)> set_backlog;
  if (tls) {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty())
      return absl::InvalidArgumentError("HTTPS needs both tls_cert_file and tls_key_file");
    auto ssl = std::make_unique<Listener<httplib::SSLServer>>(options_.tls_cert_file.c_str(),
                                                               options_.tls_key_file.c_str());
    if (!ssl->is_valid()) return absl::InvalidArgumentError("cannot load the TLS certificate or key");
    set_backlog = [s = ssl.get()](int n) { return s->SetBacklog(n); };
    server_ = std::move(ssl);
    server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server_->set_read_timeout(absl::ToInt64Seconds(options_.header_timeout), 0);
  } else {
    auto plain = std::make_unique<FrontedServer>();
    workers_ = std::make_unique<httplib::ThreadPool>(threads);
    HttpFrontOptions fo;
    fo.framing.max_body_bytes = options_.max_body_bytes;
    fo.header_timeout = options_.header_timeout;
    fo.body_timeout = options_.body_timeout;
    fo.max_connections = options_.max_connections;
    fo.max_connections_per_client = options_.max_connections_per_client;
    front_ = std::make_unique<HttpFront>(
        fo, [s = plain.get()](const FrontRequest& r) { return s->Serve(r, kWriteTimeout); },
        [pool = workers_.get()](std::function<void()> fn) { pool->enqueue(std::move(fn)); }, threads);
    plain->SetFront(front_.get());
    set_backlog = [s = plain.get()](int n) { return s->SetBacklog(n); };
    server_ = std::move(plain);
    server_->new_task_queue = [] { return new InlineQueue(); };
  }
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_write_timeout(absl::ToInt64Seconds(kWriteTimeout), 0);
  Routes();
  auto colon = options_.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(options_.listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535)
    return absl::InvalidArgumentError(absl::StrCat("http_listen '", options_.listen, "' is not host:port"));
  std::string host = options_.listen.substr(0, colon);
  if (port == 0) {
    port_ = server_->bind_to_any_port(host.c_str());
    if (port_ <= 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen));
  } else {
    if (!server_->bind_to_port(host.c_str(), port))
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen, " (address in use?)"));
    port_ = port;
  }
  if (!set_backlog(options_.backlog)) return absl::InternalError("cannot set the HTTP listen backlog");
  if (!options_.port_file.empty()) {
    std::string tmp = options_.port_file + ".tmp";
    {
      std::ofstream f(tmp);
      f << port_ << "\n";
    }
    std::rename(tmp.c_str(), options_.port_file.c_str());
  }
  if (front_) front_->Start();
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("event=http_listening address={}:{} tls={}", host, port_, tls);
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  if (front_) front_->Stop();
  if (workers_) workers_->shutdown();  // requests in hand finish; their connections close
  workers_.reset();
}

std::function<void(const httplib::Request&, httplib::Response&)> HttpServer::Guard(const char* route, bool generation,
                                                                                    Handler fn) {
  return [this, route, generation, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    absl::Time start = absl::Now();
    std::string rid = RequestIdOf(req);
    res.set_header("x-request-id", rid);
    res.status = 200;
    if (auto st = keys_.Check(req.get_header_value("Authorization")); !st.ok()) {
      SendError(res, st);
    } else if (draining_ && generation) {
      SendError(res, absl::UnavailableError("the gateway is shutting down"));
    } else {
      fn(req, res, rid);
    }
    gw_.metrics->CountRequest(route, std::to_string(res.status));
    spdlog::debug("event=http route={} status={} request_id={} remote={} duration_ms={:.2f}", route, res.status, rid,
                  req.remote_addr, absl::ToDoubleMilliseconds(absl::Now() - start));
  };
}

void HttpServer::ServeGeneration(const httplib::Request& req, httplib::Response& res, const std::string& rid,
                                 OpenAiRequest r, bool citations) {
  const bool chat = r.chat;
  const bool stream = r.stream;
  absl::Time deadline = absl::Now() + gw_.request_timeout;
  auto sink = std::make_shared<BlockingSink>();
  std::string model = r.job.model.empty() ? gw_.default_model : r.job.model;
  auto builder = std::make_shared<OpenAiResponseBuilder>(chat, absl::StrCat(chat ? "chatcmpl-" : "cmpl-", rid), model,
                                                         UnixNow(), r.job.n, r.job.logprobs, r.job.top_logprobs);
  if (citations) builder->IncludeCitations();
  auto gen = Generation::Start(gw_, std::move(r.job), rid, deadline, sink);
  // Until the answer starts (and all along for a non-streamed one) nothing
  // is written that would reveal a client gone: watch its connection.
  const ClientConnection conn = ClientConnection::Of(req);
  absl::Time give_up = deadline + absl::Seconds(5);
  absl::Time next_check = absl::Now();
  auto wait = [&]() -> absl::Status {
    for (;;) {
      if (absl::Now() >= next_check) {  // a poll(2) every 20 ms, output or not
        if (conn.Closed()) return absl::CancelledError("the client closed the connection");
        next_check = absl::Now() + absl::Milliseconds(20);
      }
      if (sink->Wait(std::min(give_up, next_check))) return absl::OkStatus();
      if (absl::Now() >= give_up) return absl::DeadlineExceededError("the request's deadline expired");
    }
  };
  // Wait for the first output, or the error that comes instead, to choose the status.
  if (auto st = wait(); !st.ok()) {
    gen->Cancel();
    return SendError(res, st);
  }
  std::optional<absl::Status> final;
  auto first = sink->Take(&final);
  if (first.empty() && final && !final->ok()) return SendError(res, *final);
  if (!stream) {
    for (auto& m : first) builder->Add(m);
    while (!final) {
      if (auto st = wait(); !st.ok()) {
        gen->Cancel();
        return SendError(res, st);
      }
      for (auto& m : sink->Take(&final)) builder->Add(m);
    }
    if (!final->ok()) return SendError(res, *final);
    res.set_content(builder->Complete(), "application/json");
    return;
  }
  bool include_usage = r.include_usage;
  StreamSse<v1::GatewayGenerateResponse>(
      res, sink, std::move(first), final, [builder](const v1::GatewayGenerateResponse& m) { return builder->Chunks(m); },
      [builder, include_usage] {
        return include_usage ? std::vector<std::string>{builder->UsageChunk()} : std::vector<std::string>{};
      },
      [gen] { gen->Cancel(); }, give_up);
}

void HttpServer::Routes() {
  auto& s = *server_;
  auto generate = [this](bool chat) {
    return [this, chat](const httplib::Request& req, httplib::Response& res, const std::string& rid) {
      std::string param;
      auto parsed = chat ? ParseChatCompletionRequest(req.body, gw_.default_model, &param)
                         : ParseCompletionRequest(req.body, gw_.default_model, &param);
      if (!parsed.ok()) return SendError(res, parsed.status(), param);
      ServeGeneration(req, res, rid, std::move(*parsed), /*citations=*/false);
    };
  };

  s.Post("/v1/chat/completions", Guard("/v1/chat/completions", true, generate(true)));
  s.Post("/v1/completions", Guard("/v1/completions", true, generate(false)));

  s.Post("/v1/embeddings", Guard("/v1/embeddings", true, [this](const httplib::Request& req,
                                                                   httplib::Response& res, const std::string& rid) {
           std::string param;
           auto parsed = ParseEmbeddingsRequest(req.body, gw_.default_model, &param);
           if (!parsed.ok()) return SendError(res, parsed.status(), param);
           EmbedJob job;
           job.model = parsed->model;
           job.texts = parsed->texts;
           job.token_inputs = parsed->token_inputs;
           auto promise = std::make_shared<std::promise<absl::StatusOr<v1::GatewayEmbedResponse>>>();
           auto future = promise->get_future();
           RunEmbed(gw_, std::move(job), rid, absl::Now() + gw_.request_timeout,
                    [promise](absl::StatusOr<v1::GatewayEmbedResponse> r) { promise->set_value(std::move(r)); });
           auto r = future.get();
           if (!r.ok()) return SendError(res, r.status());
           res.set_content(EmbeddingsResponseJson(parsed->model, *r, parsed->base64), "application/json");
         }));

  s.Get("/v1/models", Guard("/v1/models", false,
                              [this](const httplib::Request&, httplib::Response& res, const std::string&) {
                                res.set_content(ModelsListJson(ListModelsOf(*gw_.pool), UnixNow()),
                                                "application/json");
                              }));

  RagRoutes();
  AgentRoutes();

  // Public: load balancers and probes carry no key.
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    int healthy = 0;
    for (const auto& w : gw_.pool->table().Snapshot()) healthy += w.routable() ? 1 : 0;
    bool ok = healthy > 0 && !draining_;
    res.status = ok ? 200 : 503;
    res.set_content(absl::StrCat("{\"status\":\"", ok ? "ok" : "unavailable", "\",\"healthy_workers\":", healthy, "}"),
                    "application/json");
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    GatewayMetrics::Gauges g;
    g.queue_depth = gw_.admission->queued();
    g.running = gw_.admission->running();
    for (const auto& w : gw_.pool->table().Snapshot()) g.workers.push_back({w.address, w.outstanding, w.routable()});
    res.set_content(gw_.metrics->Render(g), "text/plain; version=0.0.4");
  });

  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    absl::Status st = res.status == 404   ? absl::NotFoundError(absl::StrCat("no route for ", req.method, " ", req.path))
                      : res.status == 413 ? absl::InvalidArgumentError("the request body is too large")
                                          : absl::InvalidArgumentError(absl::StrCat("HTTP ", res.status));
    int status = res.status;
    res.set_content(OpenAiErrorBody(st), "application/json");
    res.status = status;
  });
}

}  // namespace llmesh::gateway
