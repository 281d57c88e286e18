// The stack file (deploy/llmesh.yaml) as the launcher sees it: which
// processes to start, where, with which model.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace llmesh::cli {

struct StackProcess {
  std::string name;      // "engine-1"; also the log and port file stem
  std::string section;   // config section: "engine"
  std::string binary;    // "llmesh-engine"
  std::string host;
  int port = 0;
  std::string health_service;  // full gRPC service name it must report SERVING
  std::string address() const { return host + ":" + std::to_string(port); }
};

struct StackConfig {
  std::string config_path;  // absolute
  std::string model_dir;    // absolute, resolved
  std::string model;
  std::string run_dir;
  int engine_replicas = 2;
  absl::Duration ready_timeout = absl::Seconds(60);
  std::vector<StackProcess> processes;  // in start order
  // engine.listen: the first engine's host and port; more take the next free ports.
  std::string engine_host = "127.0.0.1";
  int engine_base_port = 50052;
  // common.shutdown_grace: how long a stopping service drains.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // The first of gateway.api_keys (or LLMESH_GATEWAY_API_KEYS): the launcher's own calls.
  std::string api_key;
  // The gateway's OpenAI-compatible HTTP listener (gateway.http_listen).
  std::string gateway_http_host = "0.0.0.0";
  int gateway_http_port = 8080;
  // Compute threads per engine worker: engine.threads, else the launcher
  // splits this machine's cores over the workers it starts (0 = unset).
  int engine_threads = 0;
  // common.cluster_token / cluster_token_file is set in the stack file: the
  // services read it themselves. Otherwise the launcher hands them one.
  bool cluster_token_in_file = false;
  // Where rag-svc and agent-svc keep their databases: their data_dir from the
  // stack file, under run_dir when relative (not in the working tree).
  std::string rag_data_dir, agent_data_dir;
};

// $LLMESH_CONFIG, else deploy/llmesh.yaml of the source tree this binary was built in.
std::string DefaultStackConfigPath();

// Reads the stack file; `model_dir_override` / `replicas_override` (when set)
// win over the file. `default_model_dir` is used when neither names one.
absl::StatusOr<StackConfig> LoadStackConfig(const std::string& path, const std::string& model_dir_override,
                                            int replicas_override, const std::string& default_model_dir);

}  // namespace llmesh::cli
