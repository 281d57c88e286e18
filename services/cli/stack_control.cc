#include "stack_control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace llmesh::cli {
namespace {

constexpr size_t kMaxRequest = 1024;

// A unix socket address for `path`. sun_path holds 107 characters; a longer
// path is reached through its directory: /proc/self/fd/<dir fd>/<name>.
// `*dir_fd` (closed by the caller when >= 0) keeps that directory open.
absl::Status Address(const std::string& path, sockaddr_un* addr, int* dir_fd) {
  *dir_fd = -1;
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  std::string target = path;
  if (target.size() >= sizeof(addr->sun_path)) {
    std::filesystem::path p(path);
    *dir_fd = open(p.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dir_fd < 0) return absl::NotFoundError(absl::StrCat("no directory ", p.parent_path().string()));
    target = absl::StrCat("/proc/self/fd/", *dir_fd, "/", p.filename().string());
    if (target.size() >= sizeof(addr->sun_path))
      return absl::InvalidArgumentError(absl::StrCat("socket name too long: ", path));
  }
  std::memcpy(addr->sun_path, target.c_str(), target.size());
  return absl::OkStatus();
}

// Connects to the socket at `path`: the fd, or -1 with errno set.
int Connect(const std::string& path) {
  sockaddr_un addr;
  int dir_fd = -1;
  if (!Address(path, &addr, &dir_fd).ok()) {
    errno = ENOENT;
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int err = 0;
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    err = errno;
    close(fd);
    fd = -1;
  }
  if (dir_fd >= 0) close(dir_fd);
  if (fd < 0 && err) errno = err;
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string ControlSocketPath(const std::string& run_dir) { return run_dir + "/control.sock"; }

ControlConnection::~ControlConnection() { close(fd_); }

absl::Status ControlConnection::ReadRequest(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  char buf[256];
  while (request_.find('\n') == std::string::npos) {
    if (request_.size() > kMaxRequest) return absl::InvalidArgumentError("request line too long");
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return absl::DeadlineExceededError("no request line");
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) continue;
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    request_.append(buf, static_cast<size_t>(n));
  }
  auto nl = request_.find('\n');
  if (nl == std::string::npos) return absl::InvalidArgumentError("no request line");
  request_.resize(nl);
  return absl::OkStatus();
}

void ControlConnection::Send(const std::string& line) { (void)SendAll(fd_, line + "\n"); }

void ControlConnection::Finish(const absl::Status& status) {
  if (status.ok()) return Send("OK");
  std::string message(status.message());
  for (char& c : message)
    if (c == '\n') c = ' ';
  Send("ERROR " + message);
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Listen(const std::string& run_dir) {
  std::string path = ControlSocketPath(run_dir);
  if (int fd = Connect(path); fd >= 0) {
    close(fd);
    return absl::AlreadyExistsError(
        absl::StrCat("another llmesh up is running with run directory ", run_dir, " (", path, " answers)"));
  }
  unlink(path.c_str());  // stale: its launcher is gone
  sockaddr_un addr;
  int dir_fd = -1;
  if (auto st = Address(path, &addr, &dir_fd); !st.ok()) return st;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // Only this user may connect: the socket is created without group/other bits.
  mode_t old_mask = umask(0077);
  bool bound = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  int err = errno;
  umask(old_mask);
  if (dir_fd >= 0) close(dir_fd);
  if (!bound || listen(fd, 4) != 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", path, ": ", std::strerror(err)));
  }
  return std::unique_ptr<ControlServer>(new ControlServer(fd, path));
}

ControlServer::~ControlServer() {
  close(fd_);
  unlink(path_.c_str());
}

std::unique_ptr<ControlConnection> ControlServer::Accept(absl::Duration timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return nullptr;
  int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return nullptr;
  return std::make_unique<ControlConnection>(fd);
}

absl::Status SendControl(const std::string& run_dir, const std::string& request,
                         const std::function<void(const std::string&)>& on_line) {
  std::string path = ControlSocketPath(run_dir);
  int fd = Connect(path);
  if (fd < 0) {
    if (errno == ECONNREFUSED)
      return absl::UnavailableError(absl::StrCat("no llmesh stack is running with run directory ", run_dir, " (",
                                                 path, " is left from one that is gone)"));
    return absl::UnavailableError(absl::StrCat("no llmesh stack is running with run directory ", run_dir,
                                               " (no ", path, "); start one with `llmesh up`"));
  }
  if (!SendAll(fd, request + "\n")) {
    close(fd);
    return absl::UnavailableError("the launcher closed the control connection");
  }
  std::string buf;
  char chunk[4096];
  while (true) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line == "OK") {
        close(fd);
        return absl::OkStatus();
      }
      if (absl::StartsWith(line, "ERROR ")) {
        close(fd);
        return absl::FailedPreconditionError(line.substr(6));
      }
      on_line(line);
    }
  }
  close(fd);
  return absl::UnavailableError("the launcher closed the control connection without an answer (is it stopping?)");
}

}  // namespace llmesh::cli
