// The HTTP listener's front: reads each request whole, on one epoll thread,
// before a worker thread is spent on it. cpp-httplib gives every connection
// a worker from accept on, so connections that send their headers slowly
// (slowloris) held all of them and every other request waited for a read
// timeout. Here a connection costs a worker only while its complete request
// is being handled. The front also:
//   - bounds the time to receive a request's head (header_timeout) and its
//     body (body_timeout): 408, and idle keep-alive connections (closed);
//   - refuses a bad head at once (http_framing.h: 400 / 413 / 431);
//   - caps connections per client address (429) and in all (503), and the
//     complete requests waiting for a worker (503), answering instead of
//     resetting: an answer before the whole request was read is followed by
//     a lingering close (the rest is read and dropped, briefly), so the
//     client reads the answer rather than a TCP reset.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "llmesh/gateway/http_framing.h"

namespace llmesh::gateway {

struct HttpFrontOptions {
  FramingLimits framing;
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration body_timeout = absl::Seconds(30);
  absl::Duration keep_alive_timeout = absl::Seconds(5);
  int max_connections = 4096;
  int max_connections_per_client = 256;
  int max_waiting = 64;  // complete requests waiting for a worker
};

// A complete request, handed to a worker with its connection.
struct FrontRequest {
  int fd = -1;
  std::string bytes;  // exactly one request: head and body
};

class HttpFront {
 public:
  // `serve` runs a request on a worker thread (the caller's pool, through
  // `dispatch`) and tells whether the connection stays open for another.
  using Serve = std::function<bool(const FrontRequest&)>;
  using Dispatch = std::function<void(std::function<void()>)>;
  HttpFront(HttpFrontOptions options, Serve serve, Dispatch dispatch, int workers);
  ~HttpFront();

  void Start();
  // Takes an accepted socket. Any thread.
  void Adopt(int fd);
  // Closes every connection not being served, and those served when they
  // are done.
  void Stop();

 private:
  struct Conn;
  // A served request's connection: read the next request or close.
  void Done(int fd, bool keep_alive);
  void Loop();
  void TakeInbox();
  void Register(std::unique_ptr<Conn> c);
  void OnReadable(Conn& c);
  void Examine(Conn& c);
  // An error answer, then a lingering close.
  void Refuse(Conn& c, int http_status, const std::string& message);
  void Close(int fd);
  void ExpireDeadlines();

  const HttpFrontOptions options_;
  Serve serve_;
  Dispatch dispatch_;
  const int workers_;
  int epoll_ = -1, wake_ = -1;  // wake_: an eventfd for the inbox
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  std::mutex mu_;  // the inbox, from other threads
  bool exited_ = false;  // the loop is gone: hand-offs are closed at once
  std::vector<int> adopted_;
  std::vector<std::pair<int, bool>> done_;

  // The loop thread's own.
  absl::flat_hash_map<int, std::unique_ptr<Conn>> conns_;  // every open connection
  absl::flat_hash_map<std::string, int> per_client_;
  int serving_ = 0;  // dispatched, not yet Done
};

}  // namespace llmesh::gateway
