#include "llmesh/rpc/service_main.h"

#include <cstdio>

#include "llmesh/common/logging.h"
#include "llmesh/rpc/cluster_auth.h"
#include "spdlog/spdlog.h"

namespace llmesh::rpc {

int RunService(int argc, char** argv, std::string_view section, std::string_view default_listen,
               ServiceModule& module) {
  BlockShutdownSignals();
  auto options = CommonServiceOptions(default_listen);
  for (auto& o : module.Options()) options.push_back(std::move(o));
  auto config = Config::FromProcess(section, std::move(options), argc, argv);
  if (!config.ok()) {
    if (absl::IsNotFound(config.status()) && config.status().message().find("Options") == 0) {
      std::printf("usage: %s [options]\n%s", argv[0], std::string(config.status().message()).c_str());
      return 0;
    }
    std::fprintf(stderr, "%s: %s\n", argv[0], std::string(config.status().message()).c_str());
    return 2;
  }
  if (auto st = InitLogging(section, config->GetString("log_level"), config->GetString("log_format"));
      !st.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], std::string(st.message()).c_str());
    return 2;
  }
  auto server_options = ServerOptions::FromConfig(*config);
  if (!server_options.ok()) {
    spdlog::error("event=bad_config error=\"{}\"", server_options.status().message());
    return 2;
  }
  // Outgoing calls present the same credential the server demands.
  SetClusterToken(server_options->cluster_token);
  ServerRunner runner(*server_options);
  if (auto st = module.Init(*config, runner); !st.ok()) {
    spdlog::error("event=init_failed error=\"{}\"", st.message());
    return absl::IsInvalidArgument(st) ? 2 : 1;
  }
  if (auto st = runner.Start(); !st.ok()) {
    spdlog::error("event=listen_failed error=\"{}\"", st.message());
    return 1;
  }
  if (auto st = module.Started(runner); !st.ok()) {
    spdlog::error("event=start_failed error=\"{}\"", st.message());
    module.Stopping();
    runner.Shutdown();
    return 1;
  }
  runner.WaitForShutdownSignal();  // drains via Shutdown()
  module.Stopping();
  return 0;
}

}  // namespace llmesh::rpc
