#include "client_connection.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

namespace llmesh::gateway {
namespace {

// Address and port of a socket end, as cpp-httplib reports them.
bool Endpoint(const sockaddr_storage& a, std::string* host, int* port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &in.sin_addr, buf, sizeof(buf));
    *port = ntohs(in.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof(buf));
    *port = ntohs(in6.sin6_port);
  } else {
    return false;
  }
  *host = buf;
  return true;
}

bool Matches(int fd, const httplib::Request& req) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_storage peer{}, local{};
  socklen_t pl = sizeof(peer), ll = sizeof(local);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) {
    return false;
  }
  std::string peer_host, local_host;
  int peer_port = 0, local_port = 0;
  return Endpoint(peer, &peer_host, &peer_port) && Endpoint(local, &local_host, &local_port) &&
         peer_port == req.remote_port && local_port == req.local_port && peer_host == req.remote_addr;
}

}  // namespace

ClientConnection ClientConnection::Of(const httplib::Request& req) {
  if (req.remote_port <= 0 || req.local_port <= 0) return ClientConnection(-1);
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return ClientConnection(-1);
  int found = -1;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    if (Matches(static_cast<int>(fd), req)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return ClientConnection(found);
}

bool ClientConnection::Closed() const {
  if (fd_ < 0) return false;
  // POLLRDHUP: the client sent FIN. HTTP clients do not half-close while
  // awaiting an answer, so that is a hang-up, like RST (POLLHUP/POLLERR).
  pollfd p{fd_, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

}  // namespace llmesh::gateway
