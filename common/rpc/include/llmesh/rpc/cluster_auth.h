// The cluster credential: one shared secret that every llmesh process presents
// on its internal calls and checks on the calls it serves, so that nothing but
// the stack itself can reach the internal services or the gateway's worker
// registry.
//
//   server: ServerOptions.cluster_token set → every RPC must carry
//           `x-llmesh-cluster-token: <token>`, except grpc.health.v1 (load
//           balancer and Kubernetes probes cannot send metadata) and the
//           services added with Access::kPublic (the gateway's API, which has
//           its own API keys). The check runs in gRPC's transport before any
//           handler: a call without the token ends UNAUTHENTICATED and never
//           reaches the service.
//   client: rpc::CreateChannel attaches the process's token (SetClusterToken)
//           to every call it makes.
//
// The token comes from `cluster_token` / `cluster_token_file` (flag, env
// LLMESH_<SECTION>_CLUSTER_TOKEN[_FILE], or `common:` in the stack file) or,
// failing those, LLMESH_CLUSTER_TOKEN / LLMESH_CLUSTER_TOKEN_FILE, which the
// launcher, docker-compose and Kubernetes set for the whole stack.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "llmesh/common/config.h"

namespace llmesh::rpc {

inline constexpr char kClusterTokenKey[] = "x-llmesh-cluster-token";
// Tokens shorter than this are refused at startup: a guessable secret is no
// credential.
inline constexpr size_t kMinClusterTokenBytes = 16;

// The configured token ("" when none), validated; reads the stack-wide
// environment variables when the config has none.
absl::StatusOr<std::string> ClusterTokenFromConfig(const Config& config);
// LLMESH_CLUSTER_TOKEN or the file LLMESH_CLUSTER_TOKEN_FILE names ("" when
// neither is set), validated: what command-line tools present.
absl::StatusOr<std::string> ClusterTokenFromEnv();
// A random token (hex of 32 bytes from the OS), for a stack that has none.
std::string GenerateClusterToken();

// The token this process attaches to its outgoing calls ("" for none). Set once
// at startup, before channels are created.
void SetClusterToken(std::string token);
const std::string& ClusterToken();

// Which calls a server lets through without the token. Paths are gRPC method
// paths ("/llmesh.v1.EngineService/Generate").
class ClusterAuthPolicy {
 public:
  ClusterAuthPolicy(std::string token, std::vector<std::string> public_services);
  bool enabled() const { return !token_.empty(); }
  bool IsOpen(std::string_view path) const;
  // Compares in time independent of where the strings differ.
  bool TokenMatches(std::string_view presented) const;

 private:
  std::string token_;
  std::vector<std::string> open_prefixes_;
};

// Listener credentials that enforce `policy`: plaintext (when `tls` is null) or
// TLS. Calls refused are logged (rate limited) and end UNAUTHENTICATED.
std::shared_ptr<grpc::ServerCredentials> ClusterAuthServerCredentials(
    std::shared_ptr<const ClusterAuthPolicy> policy, std::shared_ptr<grpc::ServerCredentials> tls);

// Interceptor that adds the process's token to every call of a channel.
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> ClusterTokenInterceptor();

}  // namespace llmesh::rpc
