// The control channel of a running `llmesh up`: a unix socket in its run
// directory, RUN_DIR/control.sock (mode 0600: only the user who started the
// stack). A client connects, sends one request line ("scale engine 3",
// "restart engine", "ps"); the launcher answers with progress lines as the
// work goes, then a last line "OK" or "ERROR <message>", and closes. One
// request at a time, served by the launcher's main thread between its checks
// for signals and dead children.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace llmesh::cli {

std::string ControlSocketPath(const std::string& run_dir);

// One client of the launcher.
class ControlConnection {
 public:
  explicit ControlConnection(int fd) : fd_(fd) {}
  ~ControlConnection();
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;

  // The request line (without the newline); empty when the client sent none in time.
  const std::string& request() const { return request_; }
  absl::Status ReadRequest(absl::Duration timeout);
  // A progress line; a client that went away is ignored (the work goes on).
  void Send(const std::string& line);
  // The last line: "OK" or "ERROR <message>".
  void Finish(const absl::Status& status);

 private:
  int fd_;
  std::string request_;
};

class ControlServer {
 public:
  // Binds RUN_DIR/control.sock. AlreadyExists when another launcher answers
  // there; a stale socket (its launcher is gone) is replaced.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Listen(const std::string& run_dir);
  ~ControlServer();  // closes and removes the socket

  // Waits up to `timeout` for a client; nullptr when none came.
  std::unique_ptr<ControlConnection> Accept(absl::Duration timeout);

 private:
  ControlServer(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// Client side: sends `request` to the launcher running in `run_dir`, calls
// `on_line` for each progress line, and returns the launcher's verdict.
// Unavailable (with a message saying so) when no stack runs there.
absl::Status SendControl(const std::string& run_dir, const std::string& request,
                         const std::function<void(const std::string&)>& on_line);

}  // namespace llmesh::cli
