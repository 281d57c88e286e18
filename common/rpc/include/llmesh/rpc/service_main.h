// The body of every service binary's main(): configuration, logging, the
// server, signals, exit codes. A binary supplies a ServiceModule.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/common/config.h"
#include "llmesh/rpc/server.h"

namespace llmesh::rpc {

class ServiceModule {
 public:
  virtual ~ServiceModule() = default;
  // Service-specific options, appended to CommonServiceOptions.
  virtual std::vector<OptionSpec> Options() const { return {}; }
  // Builds the service objects and registers them on the runner (before Start).
  virtual absl::Status Init(const Config& config, ServerRunner& runner) = 0;
  // Called once listening. Whatever work comes before SERVING (loading a model)
  // happens here; the module calls runner.SetServing(true) when ready.
  virtual absl::Status Started(ServerRunner& runner) {
    runner.SetServing(true);
    return absl::OkStatus();
  }
  // Called after the server has drained in-flight RPCs: stop background work.
  virtual void Stopping() {}
};

// Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad configuration.
int RunService(int argc, char** argv, std::string_view section, std::string_view default_listen,
               ServiceModule& module);

}  // namespace llmesh::rpc
