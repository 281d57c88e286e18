// Child processes: start a binary, signal it, reap it. Used by the stack
// launcher (`llmesh up`) and integration tests. A Subprocess still running
// when destroyed is killed, so nothing is left behind.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace llmesh {

class Subprocess {
 public:
  // argv[0] is the program path. stdout/stderr go to `log_path` when given
  // (appended to). `env` entries ("K=V") are added to the inherited environment.
  // The child runs in its own process group with an empty signal mask.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const std::vector<std::string>& argv,
                                                          const std::string& log_path = "",
                                                          const std::vector<std::string>& env = {});
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

}  // namespace llmesh
