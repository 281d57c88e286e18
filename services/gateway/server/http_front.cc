#include "http_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "llmesh/gateway/errors.h"
#include "spdlog/spdlog.h"

namespace llmesh::gateway {
namespace {

// How long an answered connection is read and dropped before it is closed:
// closing with the client's bytes unread would send a reset, which can
// destroy the answer before the client reads it.
constexpr absl::Duration kLinger = absl::Seconds(2);

std::string PeerAddress(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  char buf[INET6_ADDRSTRLEN] = {};
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "";
  if (a.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(a).sin_addr, buf, sizeof(buf));
  if (a.ss_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(a).sin6_addr, buf, sizeof(buf));
  return buf;
}

const char* Reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    default: return "Service Unavailable";
  }
}

absl::StatusCode CodeOf(int status) {
  switch (status) {
    case 408: return absl::StatusCode::kDeadlineExceeded;
    case 429: return absl::StatusCode::kResourceExhausted;
    case 503: return absl::StatusCode::kUnavailable;
    default: return absl::StatusCode::kInvalidArgument;
  }
}

}  // namespace

struct HttpFront::Conn {
  enum class Phase { kHead, kBody, kIdle, kServing, kClosing };
  int fd;
  std::string peer;
  std::string buf;
  RequestFramer framer;
  Phase phase = Phase::kHead;
  absl::Time deadline;
  bool continue_sent = false;
};

HttpFront::HttpFront(HttpFrontOptions options, Serve serve, Dispatch dispatch, int workers)
    : options_(options), serve_(std::move(serve)), dispatch_(std::move(dispatch)), workers_(workers) {}

HttpFront::~HttpFront() {
  Stop();
  if (wake_ >= 0) close(wake_);
  if (epoll_ >= 0) close(epoll_);
}

void HttpFront::Start() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
  thread_ = std::thread([this] { Loop(); });
}

void HttpFront::Adopt(int fd) {
  {
    std::lock_guard lock(mu_);
    if (!exited_) {
      adopted_.push_back(fd);
      fd = -1;
    }
  }
  if (fd >= 0) {
    close(fd);
    return;
  }
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
}

void HttpFront::Done(int fd, bool keep_alive) {
  {
    std::lock_guard lock(mu_);
    if (!exited_) {
      done_.emplace_back(fd, keep_alive);
      fd = -1;
    }
  }
  if (fd >= 0) {
    shutdown(fd, SHUT_RDWR);
    close(fd);
    return;
  }
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
}

void HttpFront::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
  thread_.join();
}

void HttpFront::Loop() {
  epoll_event events[256];
  absl::Time next_sweep = absl::Now();
  while (!stopping_) {
    int n = epoll_wait(epoll_, events, 256, 50);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_) {
        uint64_t v;
        (void)!read(wake_, &v, sizeof(v));
        TakeInbox();
        continue;
      }
      auto it = conns_.find(fd);
      if (it != conns_.end()) OnReadable(*it->second);
    }
    if (absl::Now() >= next_sweep) {
      ExpireDeadlines();
      next_sweep = absl::Now() + absl::Milliseconds(50);
    }
  }
  {
    std::lock_guard lock(mu_);
    exited_ = true;
  }
  TakeInbox();  // what came before exited_: registered, then closed below
  std::vector<int> open;
  for (const auto& [fd, c] : conns_)
    if (c->phase != Conn::Phase::kServing) open.push_back(fd);
  for (int fd : open) Close(fd);
}

void HttpFront::TakeInbox() {
  std::vector<int> adopted;
  std::vector<std::pair<int, bool>> done;
  {
    std::lock_guard lock(mu_);
    adopted.swap(adopted_);
    done.swap(done_);
  }
  for (int fd : adopted) {
    auto c = std::make_unique<Conn>(Conn{fd, PeerAddress(fd), "", RequestFramer(options_.framing),
                                         Conn::Phase::kHead, absl::Now() + options_.header_timeout});
    Register(std::move(c));
  }
  for (auto [fd, keep_alive] : done) {
    --serving_;
    auto it = conns_.find(fd);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    if (!keep_alive || stopping_) {
      Close(fd);
      continue;
    }
    c.framer.Reset();
    c.continue_sent = false;
    c.phase = Conn::Phase::kIdle;
    c.deadline = absl::Now() + options_.keep_alive_timeout;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    Examine(c);  // a pipelined request may be buffered already
  }
}

void HttpFront::Register(std::unique_ptr<Conn> owned) {
  Conn& c = *owned;
  fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
  const int for_client = per_client_[c.peer]++;
  const bool too_many = static_cast<int>(conns_.size()) >= options_.max_connections;
  conns_[c.fd] = std::move(owned);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = c.fd;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
  if (too_many) return Refuse(c, 503, "the gateway has too many open connections; retry later");
  if (for_client >= options_.max_connections_per_client)
    return Refuse(c, 429, absl::StrCat("too many connections from ", c.peer, " (at most ",
                                       options_.max_connections_per_client, ")"));
}

void HttpFront::OnReadable(Conn& c) {
  const size_t cap = options_.framing.max_head_bytes + options_.framing.max_body_bytes + (64 << 10);
  char buf[64 << 10];
  bool eof = false;
  while (true) {
    ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      if (c.phase != Conn::Phase::kClosing) c.buf.append(buf, static_cast<size_t>(n));
      if (c.buf.size() > cap) break;  // the framer refuses or completes it
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    eof = true;  // closed, half-closed or reset
    break;
  }
  if (c.phase != Conn::Phase::kClosing) Examine(c);
  // A whole request before a half-close is still served; the next read
  // after it closes the connection.
  if (eof && c.phase != Conn::Phase::kServing) Close(c.fd);
}

void HttpFront::Examine(Conn& c) {
  if (c.buf.empty()) return;
  if (c.phase == Conn::Phase::kIdle) {
    c.phase = Conn::Phase::kHead;
    c.deadline = absl::Now() + options_.header_timeout;
  }
  RequestFrame f = c.framer.Update(c.buf);
  if (f.state == RequestFrame::State::kError) return Refuse(c, f.http_status, f.error);
  if (f.state == RequestFrame::State::kIncomplete) {
    if (f.head_bytes > 0 && c.phase == Conn::Phase::kHead) {
      c.phase = Conn::Phase::kBody;
      c.deadline = absl::Now() + options_.body_timeout;
      if (f.expect_continue && !c.continue_sent) {
        constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        (void)!send(c.fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        c.continue_sent = true;
      }
    }
    return;
  }
  if (serving_ >= workers_ + options_.max_waiting)
    return Refuse(c, 503, "the gateway is overloaded (every HTTP worker is busy); retry later");
  FrontRequest req{c.fd, c.buf.substr(0, f.total_bytes)};
  c.buf.erase(0, f.total_bytes);
  if (f.expect_continue) {
    // Answered here (or the body came anyway): hide it from cpp-httplib,
    // which would send a second 100 Continue after the body.
    auto at = absl::AsciiStrToLower(req.bytes.substr(0, f.head_bytes)).find("\r\nexpect:");
    if (at != std::string::npos) req.bytes[at + 2] = 'X';
  }
  epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
  c.phase = Conn::Phase::kServing;
  ++serving_;
  dispatch_([this, req = std::move(req)] { Done(req.fd, serve_(req)); });
}

void HttpFront::Refuse(Conn& c, int http_status, const std::string& message) {
  std::string body = OpenAiErrorBody(absl::Status(CodeOf(http_status), message));
  std::string out = absl::StrCat("HTTP/1.1 ", http_status, " ", Reason(http_status),
                                 "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                                 http_status == 429 || http_status == 503 ? "\r\nRetry-After: 1" : "",
                                 "\r\nConnection: close\r\n\r\n", body);
  (void)!send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  shutdown(c.fd, SHUT_WR);
  spdlog::debug("event=http_refused status={} remote={} reason=\"{}\"", http_status, c.peer, message);
  c.phase = Conn::Phase::kClosing;
  c.buf.clear();
  c.deadline = absl::Now() + kLinger;
}

void HttpFront::Close(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  auto pc = per_client_.find(it->second->peer);
  if (pc != per_client_.end() && --pc->second <= 0) per_client_.erase(pc);
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  conns_.erase(it);
}

void HttpFront::ExpireDeadlines() {
  absl::Time now = absl::Now();
  std::vector<int> expired;
  for (const auto& [fd, c] : conns_)
    if (c->phase != Conn::Phase::kServing && c->deadline <= now) expired.push_back(fd);
  for (int fd : expired) {
    Conn& c = *conns_[fd];
    switch (c.phase) {
      case Conn::Phase::kHead:
        Refuse(c, 408, absl::StrCat("the request headers did not arrive within ",
                                    absl::FormatDuration(options_.header_timeout)));
        break;
      case Conn::Phase::kBody:
        Refuse(c, 408, absl::StrCat("the request body did not arrive within ",
                                    absl::FormatDuration(options_.body_timeout)));
        break;
      default:
        Close(fd);  // idle keep-alive, or done lingering
    }
  }
}

}  // namespace llmesh::gateway
