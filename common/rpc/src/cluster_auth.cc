#include "llmesh/rpc/cluster_auth.h"

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/support/client_interceptor.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace llmesh::rpc {
namespace {

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat("cannot read cluster token file ", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string& ProcessToken() {
  static std::string token;
  return token;
}

// One log line per second at most: a scanner must not be able to flood logs.
void LogRefused(std::string_view path, std::string_view why) {
  static std::atomic<int64_t> last_ms{0};
  static std::atomic<int64_t> suppressed{0};
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = last_ms.load();
  if (now - last < 1000 || !last_ms.compare_exchange_strong(last, now)) {
    suppressed.fetch_add(1);
    return;
  }
  spdlog::warn("event=unauthenticated method={} reason=\"{}\" suppressed_since_last={}", path, why,
               suppressed.exchange(0));
}

// The check itself, shared by the plaintext and the TLS listener. `token` is
// null when the call carries none.
grpc_status_code Check(const ClusterAuthPolicy& policy, std::string_view path, const std::string_view* token) {
  if (policy.IsOpen(path)) return GRPC_STATUS_OK;
  if (token == nullptr) {
    LogRefused(path, "no cluster token");
    return GRPC_STATUS_UNAUTHENTICATED;
  }
  if (!policy.TokenMatches(*token)) {
    LogRefused(path, "wrong cluster token");
    return GRPC_STATUS_UNAUTHENTICATED;
  }
  return GRPC_STATUS_OK;
}

constexpr char kRefusedMessage[] = "this service needs the stack's cluster credential";

// Plaintext listener: gRPC's C++ API refuses an AuthMetadataProcessor on
// insecure credentials, but the core runs one on any listener, so the port is
// added through the C API with a processor attached. It runs in the transport,
// before the call is dispatched: a refused call never reaches a handler.
class PlaintextClusterCredentials final : public grpc::ServerCredentials {
 public:
  explicit PlaintextClusterCredentials(std::shared_ptr<const ClusterAuthPolicy> policy)
      : policy_(std::move(policy)) {}

  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    spdlog::error("event=bad_credentials_use what=\"PlaintextClusterCredentials has its own processor\"");
  }

 private:
  static void Process(void* state, grpc_auth_context*, const grpc_metadata* md, size_t num_md,
                      grpc_process_auth_metadata_done_cb cb, void* user_data) {
    const auto& policy = *static_cast<std::shared_ptr<const ClusterAuthPolicy>*>(state);
    std::string_view path, token;
    bool has_token = false;
    for (size_t i = 0; i < num_md; ++i) {
      std::string_view key(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(md[i].key)),
                           GRPC_SLICE_LENGTH(md[i].key));
      std::string_view value(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(md[i].value)),
                             GRPC_SLICE_LENGTH(md[i].value));
      if (key == ":path") path = value;
      if (key == kClusterTokenKey) {
        token = value;
        has_token = true;
      }
    }
    grpc_status_code code = Check(*policy, path, has_token ? &token : nullptr);
    cb(user_data, nullptr, 0, nullptr, 0, code, code == GRPC_STATUS_OK ? nullptr : kRefusedMessage);
  }

  static void Destroy(void* state) { delete static_cast<std::shared_ptr<const ClusterAuthPolicy>*>(state); }

  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    grpc_server_credentials* creds = grpc_insecure_server_credentials_create();
    // The core keeps the processor as long as the listener, longer than this
    // object: it owns a reference to the policy and drops it in Destroy.
    grpc_server_credentials_set_auth_metadata_processor(
        creds, grpc_auth_metadata_processor{&Process, &Destroy, new std::shared_ptr<const ClusterAuthPolicy>(policy_)});
    int port = grpc_server_add_http2_port(server, addr.c_str(), creds);
    grpc_server_credentials_release(creds);
    return port;
  }

  std::shared_ptr<const ClusterAuthPolicy> policy_;
};

// TLS listener: the C++ processor hook works there.
class TlsClusterProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit TlsClusterProcessor(std::shared_ptr<const ClusterAuthPolicy> policy) : policy_(std::move(policy)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& md, grpc::AuthContext*, OutputMetadata*, OutputMetadata*) override {
    std::string_view path, token;
    bool has_token = false;
    for (const auto& [k, v] : md) {
      if (k == ":path") path = std::string_view(v.data(), v.size());
      if (k == kClusterTokenKey) {
        token = std::string_view(v.data(), v.size());
        has_token = true;
      }
    }
    if (Check(*policy_, path, has_token ? &token : nullptr) == GRPC_STATUS_OK) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kRefusedMessage);
  }

 private:
  std::shared_ptr<const ClusterAuthPolicy> policy_;
};

class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      const std::string& token = ClusterToken();
      if (!token.empty()) methods->GetSendInitialMetadata()->emplace(kClusterTokenKey, token);
    }
    methods->Proceed();
  }
};

class TokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor;
  }
};

absl::StatusOr<std::string> ValidToken(std::string token, const std::string& file) {
  if (!token.empty() && !file.empty())
    return absl::InvalidArgumentError("set cluster_token or cluster_token_file, not both");
  if (!file.empty()) {
    auto read = ReadTokenFile(file);
    if (!read.ok()) return read.status();
    if (read->empty()) return absl::InvalidArgumentError(absl::StrCat("cluster token file ", file, " is empty"));
    token = *std::move(read);
  }
  if (!token.empty() && token.size() < kMinClusterTokenBytes)
    return absl::InvalidArgumentError(
        absl::StrCat("cluster token must be at least ", kMinClusterTokenBytes, " characters"));
  for (char c : token) {
    // It travels as a gRPC metadata value: printable ASCII only.
    if (c < 0x21 || c > 0x7e)
      return absl::InvalidArgumentError("cluster token must be printable ASCII without spaces");
  }
  return token;
}

}  // namespace

absl::StatusOr<std::string> ClusterTokenFromConfig(const Config& config) {
  std::string token = config.GetString("cluster_token");
  std::string file = config.GetString("cluster_token_file");
  if (token.empty() && file.empty()) return ClusterTokenFromEnv();
  return ValidToken(std::move(token), file);
}

absl::StatusOr<std::string> ClusterTokenFromEnv() {
  return ValidToken(Getenv("LLMESH_CLUSTER_TOKEN"), Getenv("LLMESH_CLUSTER_TOKEN_FILE"));
}

std::string GenerateClusterToken() {
  std::random_device rd;  // /dev/urandom on Linux
  std::string bytes(32, '\0');
  for (auto& b : bytes) b = static_cast<char>(rd() & 0xff);
  return absl::BytesToHexString(bytes);
}

void SetClusterToken(std::string token) { ProcessToken() = std::move(token); }
const std::string& ClusterToken() { return ProcessToken(); }

ClusterAuthPolicy::ClusterAuthPolicy(std::string token, std::vector<std::string> public_services)
    : token_(std::move(token)) {
  open_prefixes_.push_back("/grpc.health.v1.Health/");
  for (auto& s : public_services) open_prefixes_.push_back(absl::StrCat("/", s, "/"));
  // A public API is worth describing to its clients (grpcurl, Postman).
  if (!public_services.empty()) {
    open_prefixes_.push_back("/grpc.reflection.v1alpha.ServerReflection/");
    open_prefixes_.push_back("/grpc.reflection.v1.ServerReflection/");
  }
}

bool ClusterAuthPolicy::IsOpen(std::string_view path) const {
  if (!enabled()) return true;
  for (const auto& p : open_prefixes_)
    if (path.starts_with(p)) return true;
  return false;
}

bool ClusterAuthPolicy::TokenMatches(std::string_view presented) const {
  unsigned diff = presented.size() != token_.size();
  for (size_t i = 0; i < token_.size(); ++i)
    diff |= static_cast<unsigned char>(token_[i]) ^
            static_cast<unsigned char>(i < presented.size() ? presented[i] : 0);
  return diff == 0;
}

std::shared_ptr<grpc::ServerCredentials> ClusterAuthServerCredentials(
    std::shared_ptr<const ClusterAuthPolicy> policy, std::shared_ptr<grpc::ServerCredentials> tls) {
  if (!tls) return std::make_shared<PlaintextClusterCredentials>(std::move(policy));
  tls->SetAuthMetadataProcessor(std::make_shared<TlsClusterProcessor>(std::move(policy)));
  return tls;
}

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> ClusterTokenInterceptor() {
  return std::make_unique<TokenInterceptorFactory>();
}

}  // namespace llmesh::rpc
