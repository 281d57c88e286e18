// llmesh-gateway: the public API of llmesh. gRPC (gateway.proto) and the
// OpenAI-compatible HTTP API on one process, over engine workers found by a
// static list, a DNS name, or self-registration (WorkerRegistry).
#include <fstream>
#include <sstream>

#include <grpcpp/security/server_credentials.h>

#include "absl/strings/str_cat.h"
#include "grpc_service.h"
#include "http_server.h"
#include "llmesh/common/logging.h"
#include "llmesh/rpc/callback_threads.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/service_main.h"
#include "spdlog/spdlog.h"

namespace {

using namespace llmesh::gateway;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class Module : public llmesh::rpc::ServiceModule {
 public:
  std::vector<llmesh::OptionSpec> Options() const override {
    return {
        {"http_listen", "0.0.0.0:8080", "host:port of the OpenAI-compatible HTTP API (port 0 picks one)"},
        {"http_port_file", "", "If set, the bound HTTP port is written here (tests, launchers)"},
        {"tokenizer", "127.0.0.1:50051", "tokenizer-svc address"},
        {"rag", "127.0.0.1:50060", "rag-svc address (Query, RagChat, collections); empty: retrieval is off"},
        {"agent", "127.0.0.1:50061", "agent-svc address (AgentRun); empty: agents are off"},
        {"model_dir", "", "Optional: the GGUF directory the tokenizer service reads, when this machine sees it too; "
                          "engine output is then detokenized here (no DetokenizeStream round trips)"},
        {"workers", "", "Static list of engine worker addresses (host:port, comma-separated)"},
        {"workers_dns", "", "host:port whose name resolves to the engine workers' addresses (re-resolved)"},
        {"dns_refresh", "5s", "How often workers_dns is resolved again"},
        {"api_keys", "", "Accepted API keys (comma-separated; also LLMESH_GATEWAY_API_KEYS). Empty: no auth"},
        {"api_keys_file", "", "File with one API key per line, added to api_keys"},
        {"max_concurrent", "64", "Generations running at once"},
        {"max_queue", "128", "Generations waiting for a slot; beyond it, 429 / RESOURCE_EXHAUSTED"},
        {"request_timeout", "300s", "Cap on every request's deadline (a client's shorter deadline wins)"},
        {"model", "", "Default model when a request names none (common.model)"},
        {"default_model", "", "Default model (overrides model)"},
        {"chat_template", "chatml", "Chat template family for models without one of their own"},
        {"tls_cert_file", "", "PEM certificate: serve gRPC and HTTP over TLS (with tls_key_file)"},
        {"tls_key_file", "", "PEM private key for tls_cert_file"},
        {"heartbeat_interval", "1s", "How often registered workers heartbeat"},
        {"heartbeat_timeout", "5s", "A registered worker silent this long is dropped"},
        {"health_interval", "1s", "How often every worker is health-checked"},
        {"max_body_bytes", "8388608", "Largest HTTP request body, in bytes (413 beyond)"},
        {"http_threads", "0", "HTTP worker threads (0: max_concurrent + max_queue + 16)"},
        {"http_header_timeout", "10s", "Time to receive an HTTP request's head (408 beyond)"},
        {"http_body_timeout", "30s", "Time to receive an HTTP request's body once its head is in (408 beyond)"},
        {"http_max_connections", "4096", "Open HTTP connections in all (503 beyond)"},
        {"http_max_connections_per_client", "256", "Open HTTP connections from one client address (429 beyond)"},
        {"max_attempts", "3", "Engine workers tried per request before the first token"},
        {"affinity_min_tokens", "32", "Prompt prefix length from which prefix affinity applies"},
        {"affinity_slack", "2", "Prefix affinity holds while that worker has at most this much more work"},
        {"callback_threads", "1", "gRPC callback threads to keep; the rest are parked, saving their poller hand-offs "
                                  "(llmesh/rpc/callback_threads.h). 0: all that gRPC starts"},
    };
  }

  absl::Status Init(const llmesh::Config& config, llmesh::rpc::ServerRunner& runner) override {
    auto geti = [&](const char* name, int64_t lo, int64_t hi, int64_t* out) -> absl::Status {
      auto v = config.GetInt(name);
      if (!v.ok()) return v.status();
      if (*v < lo || *v > hi) return absl::InvalidArgumentError(absl::StrCat(name, " must be in [", lo, ", ", hi, "]"));
      *out = *v;
      return absl::OkStatus();
    };
    auto getd = [&](const char* name, absl::Duration* out) -> absl::Status {
      auto v = config.GetDuration(name);
      if (!v.ok()) return v.status();
      if (*v <= absl::ZeroDuration()) return absl::InvalidArgumentError(absl::StrCat(name, " must be positive"));
      *out = *v;
      return absl::OkStatus();
    };
    int64_t max_concurrent, max_queue, max_body, http_threads, attempts, aff_min, aff_slack, max_msg, http_conns,
        http_conns_per_client;
    absl::Duration dns_refresh, heartbeat_interval, heartbeat_timeout, health_interval, http_header_timeout,
        http_body_timeout;
    for (auto st : {geti("max_concurrent", 1, 100000, &max_concurrent), geti("max_queue", 0, 1000000, &max_queue),
                    geti("max_body_bytes", 1024, 1LL << 30, &max_body), geti("http_threads", 0, 4096, &http_threads),
                    geti("max_attempts", 1, 16, &attempts), geti("affinity_min_tokens", 1, 1 << 20, &aff_min),
                    geti("affinity_slack", 0, 1 << 20, &aff_slack), geti("callback_threads", 0, 64, &callback_threads_),
                    geti("max_message_bytes", 1024, (1LL << 31) - 1, &max_msg), getd("dns_refresh", &dns_refresh),
                    getd("heartbeat_interval", &heartbeat_interval), getd("heartbeat_timeout", &heartbeat_timeout),
                    getd("health_interval", &health_interval), getd("request_timeout", &gw_.request_timeout),
                    geti("http_max_connections", 1, 1 << 20, &http_conns),
                    geti("http_max_connections_per_client", 1, 1 << 20, &http_conns_per_client),
                    getd("http_header_timeout", &http_header_timeout), getd("http_body_timeout", &http_body_timeout)}) {
      if (!st.ok()) return st;
    }
    std::vector<std::string> keys = config.GetList("api_keys");
    if (std::string file = config.GetString("api_keys_file"); !file.empty()) {
      auto text = ReadFile(file);
      if (!text.ok()) return text.status();
      std::stringstream ss(*text);
      for (std::string line; std::getline(ss, line);) {
        while (!line.empty() && isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
        if (!line.empty() && line[0] != '#') keys.push_back(line);
      }
    }
    keys_ = ApiKeys(keys);

    RouterOptions ro;
    ro.min_prefix_tokens = static_cast<int>(aff_min);
    ro.affinity_slack = static_cast<int>(aff_slack);
    router_ = std::make_unique<Router>(ro);
    WorkerPoolOptions po;
    po.static_workers = config.GetList("workers");
    po.dns_target = config.GetString("workers_dns");
    po.dns_refresh = dns_refresh;
    po.health_interval = health_interval;
    po.heartbeat_timeout = heartbeat_timeout;
    po.max_message_bytes = static_cast<int>(max_msg);
    pool_ = std::make_unique<WorkerPool>(po, *router_);
    admission_ = std::make_unique<Admission>(static_cast<int>(max_concurrent), static_cast<int>(max_queue));
    pool_->OnTick([this] { admission_->ExpireQueued(absl::Now()); });

    gw_.pool = pool_.get();
    gw_.router = router_.get();
    gw_.admission = admission_.get();
    gw_.metrics = &metrics_;
    gw_.tokenizer = std::shared_ptr<llmesh::v1::TokenizerService::Stub>(
        llmesh::v1::TokenizerService::NewStub(llmesh::rpc::CreateChannel(config.GetString("tokenizer"))));
    // Channels connect lazily: a stack without rag-svc or agent-svc still
    // serves generations, and those routes answer UNAVAILABLE.
    if (std::string rag = config.GetString("rag"); !rag.empty())
      gw_.rag = std::shared_ptr<llmesh::v1::RagService::Stub>(
          llmesh::v1::RagService::NewStub(llmesh::rpc::CreateChannel(rag)));
    if (std::string agent = config.GetString("agent"); !agent.empty())
      gw_.agent = std::shared_ptr<llmesh::v1::AgentService::Stub>(
          llmesh::v1::AgentService::NewStub(llmesh::rpc::CreateChannel(agent)));
    if (std::string dir = config.GetString("model_dir"); !dir.empty()) {
      local_vocab_ = std::make_unique<llmesh::tokenizer::TokenizerRegistry>(dir);
      gw_.local_vocab = local_vocab_.get();
    }
    gw_.default_model = config.GetString("default_model");
    if (gw_.default_model.empty()) gw_.default_model = config.GetString("model");
    gw_.chat_template_fallback = config.GetString("chat_template");
    gw_.max_attempts = static_cast<int>(attempts);
    gw_.limits.max_tokens_limit = 1 << 20;

    std::string cert = config.GetString("tls_cert_file"), key = config.GetString("tls_key_file");
    if (cert.empty() != key.empty()) return absl::InvalidArgumentError("TLS needs both tls_cert_file and tls_key_file");
    if (!cert.empty()) {
      auto c = ReadFile(cert);
      if (!c.ok()) return c.status();
      auto k = ReadFile(key);
      if (!k.ok()) return k.status();
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({*k, *c});
      runner.SetCredentials(grpc::SslServerCredentials(ssl));
    }
    HttpOptions ho;
    ho.listen = config.GetString("http_listen");
    ho.port_file = config.GetString("http_port_file");
    ho.tls_cert_file = cert;
    ho.tls_key_file = key;
    ho.max_body_bytes = static_cast<size_t>(max_body);
    ho.header_timeout = http_header_timeout;
    ho.body_timeout = http_body_timeout;
    ho.max_connections = static_cast<int>(http_conns);
    ho.max_connections_per_client = static_cast<int>(http_conns_per_client);
    ho.threads = http_threads > 0 ? static_cast<int>(http_threads)
                                  : static_cast<int>(std::min<int64_t>(max_concurrent + max_queue + 16, 1024));
    http_ = std::make_unique<HttpServer>(ho, gw_, keys_);

    gateway_ = std::make_unique<GatewayServiceImpl>(gw_, keys_);
    registry_ = std::make_unique<WorkerRegistryImpl>(*pool_, *router_, heartbeat_interval);
    runner.AddService(gateway_.get(), llmesh::v1::Gateway::service_full_name(), llmesh::rpc::ServerRunner::Access::kPublic);
    runner.AddService(registry_.get(), llmesh::v1::WorkerRegistry::service_full_name());
    // Stop taking HTTP generations when shutdown starts; gRPC drains in the runner.
    runner.OnShutdown([this] { http_->Drain(); });
    spdlog::info("event=config local_detokenizer={} tokenizer={} rag={} agent={} static_workers={} workers_dns={} auth={} "
                 "max_concurrent={} max_queue={}",
                 gw_.local_vocab != nullptr, config.GetString("tokenizer"), config.GetString("rag"),
                 config.GetString("agent"), po.static_workers.size(), po.dns_target, keys_.enabled(), max_concurrent,
                 max_queue);
    return absl::OkStatus();
  }

  absl::Status Started(llmesh::rpc::ServerRunner& runner) override {
    pool_->Start();
    if (auto st = http_->Start(); !st.ok()) return st;
    if (callback_threads_ > 0) {
      park_ = llmesh::rpc::CallbackThreadPark::Start(*runner.server(), static_cast<int>(callback_threads_));
      spdlog::info("event=callback_threads kept={} parked={}", callback_threads_, park_->parked());
    }
    runner.SetServing(true);
    return absl::OkStatus();
  }

  void Stopping() override {
    park_.reset();  // gRPC joins its callback threads once the server and channels go
    // gRPC has drained; let running HTTP generations finish (bounded), then stop.
    absl::Time until = absl::Now() + absl::Seconds(10);
    while (admission_->running() > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
    admission_->Close();
    http_->Stop();
    pool_->Stop();
  }

 private:
  GatewayContext gw_;
  GatewayMetrics metrics_;
  ApiKeys keys_;
  std::unique_ptr<llmesh::tokenizer::TokenizerRegistry> local_vocab_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<GatewayServiceImpl> gateway_;
  std::unique_ptr<WorkerRegistryImpl> registry_;
  int64_t callback_threads_ = 1;
  std::unique_ptr<llmesh::rpc::CallbackThreadPark> park_;
};

}  // namespace

int main(int argc, char** argv) {
  Module module;
  return llmesh::rpc::RunService(argc, argv, "gateway", "0.0.0.0:50050", module);
}
