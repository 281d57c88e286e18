#include "llmesh/rpc/server.h"

#include <signal.h>

#include <fstream>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "llmesh/common/logging.h"
#include "llmesh/rpc/cluster_auth.h"
#include "spdlog/spdlog.h"

namespace llmesh::rpc {

absl::StatusOr<ServerOptions> ServerOptions::FromConfig(const Config& config) {
  ServerOptions o;
  o.listen = config.GetString("listen");
  auto max_bytes = config.GetInt("max_message_bytes");
  if (!max_bytes.ok()) return max_bytes.status();
  if (*max_bytes < 1024 || *max_bytes > (1LL << 31) - 1)
    return absl::InvalidArgumentError("max_message_bytes must be in [1024, 2^31)");
  o.max_message_bytes = static_cast<int>(*max_bytes);
  auto grace = config.GetDuration("shutdown_grace");
  if (!grace.ok()) return grace.status();
  o.shutdown_grace = *grace;
  o.port_file = config.GetString("port_file");
  auto token = ClusterTokenFromConfig(config);
  if (!token.ok()) return token.status();
  o.cluster_token = *std::move(token);
  return o;
}

namespace {
sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}
}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer closing a socket must not kill the process.
  signal(SIGPIPE, SIG_IGN);
}

ServerRunner::ServerRunner(ServerOptions options) : options_(std::move(options)) {}

ServerRunner::~ServerRunner() { Shutdown(); }

void ServerRunner::AddService(grpc::Service* service, std::string full_name, Access access) {
  services_.push_back(service);
  if (access == Access::kPublic) public_services_.push_back(full_name);
  service_names_.push_back(std::move(full_name));
}

absl::Status ServerRunner::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Internal services are reached over loopback or a cluster network; TLS is
  // the gateway's concern (SetCredentials).
  auto credentials = credentials_ ? credentials_ : grpc::InsecureServerCredentials();
  if (!options_.cluster_token.empty()) {
    credentials = ClusterAuthServerCredentials(
        std::make_shared<ClusterAuthPolicy>(options_.cluster_token, public_services_), credentials_);
  } else if (public_services_.size() < services_.size()) {
    spdlog::warn("event=cluster_auth_off what=\"no cluster_token: internal RPCs are open to anyone who can "
                 "reach {}\"", options_.listen);
  }
  builder.AddListeningPort(options_.listen, credentials, &port_);
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind a port
  // that is taken; we want "address in use" instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  // Keepalive: notice dead peers on idle long-lived streams, and accept pings
  // from clients that keep their channels warm.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  for (auto* s : services_) builder.RegisterService(s);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0)
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen,
                                               " (address in use or invalid)"));
  SetServing(false);
  if (!options_.port_file.empty()) {
    // Write then rename, so a reader never sees a partial number.
    std::string tmp = options_.port_file + ".tmp";
    {
      std::ofstream f(tmp);
      f << port_ << "\n";
      if (!f) return absl::InternalError(absl::StrCat("cannot write port file ", tmp));
    }
    if (std::rename(tmp.c_str(), options_.port_file.c_str()) != 0)
      return absl::InternalError(absl::StrCat("cannot write port file ", options_.port_file));
  }
  spdlog::info("event=listening address={}", address());
  return absl::OkStatus();
}

std::string ServerRunner::address() const {
  std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  return absl::StrCat(host, ":", port_);
}

void ServerRunner::SetServing(bool serving) {
  if (!server_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving);
  for (const auto& name : service_names_) health->SetServingStatus(name, serving);
}

void ServerRunner::WaitForShutdownSignal() {
  sigset_t set = ShutdownSignals();
  timespec tick{0, 100 * 1000 * 1000};
  while (!shutdown_requested_.load()) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("event=signal signal={} action=drain grace_ms={}", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                   absl::ToInt64Milliseconds(options_.shutdown_grace));
      break;
    }
  }
  Shutdown();
}

void ServerRunner::RequestShutdown() { shutdown_requested_.store(true); }

void ServerRunner::Shutdown() {
  if (!server_ || shut_down_.exchange(true)) return;
  for (auto& fn : on_shutdown_) fn();
  // Health first, so load balancers stop sending before the listener closes.
  SetServing(false);
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.shutdown_grace));
  server_->Shutdown(deadline);  // waits for in-flight RPCs, cancels them at the deadline
  server_->Wait();
  spdlog::info("event=stopped");
}

}  // namespace llmesh::rpc
