#include "llmesh/rpc/resolve.h"

#include <netdb.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"

namespace llmesh::rpc {

std::optional<std::set<std::string>> ResolveAll(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  const std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return std::nullopt;
  std::set<std::string> found;
  for (addrinfo* p = res; p; p = p->ai_next) {
    char buf[NI_MAXHOST];
    if (getnameinfo(p->ai_addr, p->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) != 0) continue;
    found.insert(p->ai_family == AF_INET6 ? absl::StrCat("[", buf, "]:", port) : absl::StrCat(buf, ":", port));
  }
  freeaddrinfo(res);
  return found;
}

}  // namespace llmesh::rpc
