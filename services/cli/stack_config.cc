#include "stack_config.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "yaml-cpp/yaml.h"

namespace llmesh::cli {
namespace fs = std::filesystem;
namespace {

std::string Scalar(const YAML::Node& root, const char* section, const char* key, const std::string& def) {
  YAML::Node sec = root[section];
  if (!sec || !sec.IsMap()) return def;
  YAML::Node v = sec[key];
  return v && v.IsScalar() ? v.Scalar() : def;
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& listen, const std::string& what) {
  auto colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port <= 0 || port > 65535)
    return absl::InvalidArgumentError(absl::StrCat(what, ".listen '", listen, "' is not host:port"));
  return std::make_pair(listen.substr(0, colon), port);
}

// gateway.api_keys: a YAML list or a comma-separated string; the environment wins.
std::string FirstApiKey(const YAML::Node& root) {
  std::string keys;
  if (const char* env = std::getenv("LLMESH_GATEWAY_API_KEYS")) {
    keys = env;
  } else if (YAML::Node gw = root["gateway"]; gw && gw.IsMap() && gw["api_keys"]) {
    YAML::Node v = gw["api_keys"];
    if (v.IsSequence() && v.size() > 0 && v[0].IsScalar()) keys = v[0].Scalar();
    if (v.IsScalar()) keys = v.Scalar();
  }
  std::vector<std::string> parts = absl::StrSplit(keys, ',', absl::SkipWhitespace());
  return parts.empty() ? "" : std::string(absl::StripAsciiWhitespace(parts[0]));
}

}  // namespace

std::string DefaultStackConfigPath() {
  if (const char* env = std::getenv("LLMESH_CONFIG")) return env;
  // The binaries live in BUILD/bin, BUILD beside deploy/.
  return fs::canonical("/proc/self/exe").parent_path().string() + "/../../deploy/llmesh.yaml";
}

absl::StatusOr<StackConfig> LoadStackConfig(const std::string& path, const std::string& model_dir_override,
                                            int replicas_override, const std::string& default_model_dir) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("cannot read stack config '", path, "'"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("stack config '", path, "': ", e.what()));
  }
  StackConfig cfg;
  cfg.config_path = fs::absolute(path).string();
  cfg.model = Scalar(root, "common", "model", "stories260K");
  cfg.model_dir = !model_dir_override.empty() ? model_dir_override
                                              : Scalar(root, "common", "model_dir", "");
  if (cfg.model_dir.empty()) cfg.model_dir = default_model_dir;
  if (!cfg.model_dir.empty()) cfg.model_dir = fs::absolute(cfg.model_dir).lexically_normal().string();
  cfg.run_dir = fs::absolute(Scalar(root, "stack", "run_dir", "run")).string();
  if (!absl::SimpleAtoi(Scalar(root, "stack", "engine_replicas", "2"), &cfg.engine_replicas))
    return absl::InvalidArgumentError("stack.engine_replicas must be an integer");
  if (replicas_override > 0) cfg.engine_replicas = replicas_override;
  if (!absl::SimpleAtoi(Scalar(root, "engine", "threads", "0"), &cfg.engine_threads) || cfg.engine_threads < 0)
    return absl::InvalidArgumentError("engine.threads must be a non-negative integer");
  if (cfg.engine_replicas < 1 || cfg.engine_replicas > 8)
    return absl::InvalidArgumentError("stack.engine_replicas must be in 1..8");
  if (!absl::ParseDuration(Scalar(root, "stack", "ready_timeout", "60s"), &cfg.ready_timeout))
    return absl::InvalidArgumentError("stack.ready_timeout must be a duration such as 60s");
  if (!absl::ParseDuration(Scalar(root, "common", "shutdown_grace", "10s"), &cfg.shutdown_grace))
    return absl::InvalidArgumentError("common.shutdown_grace must be a duration such as 10s");
  cfg.api_key = FirstApiKey(root);
  cfg.cluster_token_in_file = !Scalar(root, "common", "cluster_token", "").empty() ||
                              !Scalar(root, "common", "cluster_token_file", "").empty();
  auto under_run_dir = [&](const char* section, const char* fallback) {
    fs::path dir = Scalar(root, section, "data_dir", fallback);
    return (dir.is_absolute() ? dir : fs::path(cfg.run_dir) / dir).lexically_normal().string();
  };
  cfg.rag_data_dir = under_run_dir("rag", "data/rag");
  cfg.agent_data_dir = under_run_dir("agent", "data/agent");

  struct Def { const char* section; const char* binary; const char* service; const char* listen; };
  const Def defs[] = {
      {"tokenizer", "llmesh-tokenizer", "llmesh.v1.TokenizerService", "127.0.0.1:50051"},
      {"engine", "llmesh-engine", "llmesh.v1.EngineService", "127.0.0.1:50052"},
      {"rag", "llmesh-rag", "llmesh.v1.RagService", "127.0.0.1:50060"},
      {"agent", "llmesh-agent", "llmesh.v1.AgentService", "127.0.0.1:50061"},
      {"gateway", "llmesh-gateway", "llmesh.v1.Gateway", "0.0.0.0:50050"},
  };
  for (const Def& d : defs) {
    auto hp = SplitHostPort(Scalar(root, d.section, "listen", d.listen), d.section);
    if (!hp.ok()) return hp.status();
    int copies = std::string(d.section) == "engine" ? cfg.engine_replicas : 1;
    if (std::string(d.section) == "engine") {
      cfg.engine_host = hp->first;
      cfg.engine_base_port = hp->second;
    }
    for (int i = 0; i < copies; ++i) {
      StackProcess p;
      p.section = d.section;
      p.name = p.section == "engine" ? absl::StrCat(d.section, "-", i + 1) : d.section;
      p.binary = d.binary;
      p.host = hp->first;
      p.port = hp->second + i;
      p.health_service = d.service;
      cfg.processes.push_back(p);
    }
  }
  auto http = SplitHostPort(Scalar(root, "gateway", "http_listen", "0.0.0.0:8080"), "gateway.http");
  if (!http.ok()) return http.status();
  cfg.gateway_http_host = http->first;
  cfg.gateway_http_port = http->second;
  return cfg;
}

}  // namespace llmesh::cli
