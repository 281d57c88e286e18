// Service processes for integration tests: start a service binary on an
// ephemeral 127.0.0.1 port, wait for it, health-check it over grpc.health.v1.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "llmesh/common/subprocess.h"

namespace llmesh::testing {

using ::llmesh::Subprocess;

// A service binary listening on an ephemeral 127.0.0.1 port.
struct Service {
  std::unique_ptr<Subprocess> process;
  int port = 0;
  std::string log;  // its stdout and stderr
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
