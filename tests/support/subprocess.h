// Child processes for integration tests: start a binary, wait for the port it
// bound (--port-file), signal it, reap it. A Subprocess still running when
// destroyed is killed, so a failing test leaves nothing behind.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace llmesh::testing {

class Subprocess {
 public:
  // argv[0] is the program path. stdout/stderr go to `log_path` when given.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const std::vector<std::string>& argv,
                                                          const std::string& log_path = "");
  ~Subprocess();

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Exit code, or 128 + signal number if killed; DeadlineExceeded if still running.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool reaped_ = false;
  int exit_code_ = -1;
};

// A service binary listening on an ephemeral 127.0.0.1 port.
struct Service {
  std::unique_ptr<Subprocess> process;
  int port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

// Starts `binary --listen 127.0.0.1:0 --port-file ... extra_args...` and waits
// for the port file. Logs go to a file in the test's temp dir.
absl::StatusOr<Service> StartService(const std::string& binary, const std::vector<std::string>& extra_args,
                                     absl::Duration timeout = absl::Seconds(20));

// grpc.health.v1 Check; returns the serving status name ("SERVING", ...).
absl::StatusOr<std::string> HealthStatus(const std::string& address, const std::string& service = "",
                                         absl::Duration timeout = absl::Seconds(5));
// Polls HealthStatus until SERVING.
absl::Status WaitForServing(const std::string& address, absl::Duration timeout,
                            const std::string& service = "");

// A fresh directory under the test temp dir.
std::string MakeTempDir(const std::string& prefix);

}  // namespace llmesh::testing
