#include "llmesh/rpc/channel.h"

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/cluster_auth.h"

namespace llmesh::rpc {
namespace {
std::chrono::system_clock::time_point FromNow(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

grpc::ChannelArguments ChannelArgs(int max_message_bytes) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes);
  args.SetMaxSendMessageSize(max_message_bytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  // Reconnect quickly when a worker restarts.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  return args;
}
}  // namespace

std::shared_ptr<grpc::Channel> CreateChannel(const std::string& target, int max_message_bytes) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(ClusterTokenInterceptor());
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      target, grpc::InsecureChannelCredentials(), ChannelArgs(max_message_bytes), std::move(interceptors));
}

std::shared_ptr<grpc::Channel> CreateExternalChannel(const std::string& target, int max_message_bytes) {
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), ChannelArgs(max_message_bytes));
}

std::unique_ptr<grpc::ClientContext> ContextWithTimeout(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(FromNow(timeout));
  return ctx;
}

std::unique_ptr<grpc::ClientContext> ChildContext(grpc::CallbackServerContext* parent,
                                                  absl::Duration max_timeout) {
  // FromCallbackServerContext propagates the deadline and cancellation.
  auto ctx = grpc::ClientContext::FromCallbackServerContext(*parent);
  auto cap = FromNow(max_timeout);
  if (parent->deadline() > cap) ctx->set_deadline(cap);
  std::string id = RequestIdOf(*parent);
  if (!id.empty()) ctx->AddMetadata(kRequestIdKey, id);
  return ctx;
}

absl::Status WaitForConnected(grpc::Channel& channel, absl::Duration timeout) {
  if (channel.WaitForConnected(FromNow(timeout))) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("not connected within ", absl::FormatDuration(timeout)));
}

std::string RequestIdOf(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(kRequestIdKey);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace llmesh::rpc
