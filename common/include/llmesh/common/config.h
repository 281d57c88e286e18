// One way to configure every llmesh binary. Each option has a name, a default
// and a help text; its value comes from, highest precedence first:
//   1. a command-line flag       --model-dir=/m  or  --model_dir /m
//   2. an environment variable   LLMESH_<SECTION>_<NAME>, e.g. LLMESH_ENGINE_MODEL_DIR
//   3. the stack config file     (--config FILE or LLMESH_CONFIG), YAML, key
//                                <section>.<name>, e.g. engine: {model_dir: /m}
//   4. the option's default.
// The stack file is the one deploy/ uses for the whole stack, so a service
// reads only its own section (plus `common`, for keys shared by all).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace llmesh {

struct OptionSpec {
  std::string name;           // snake_case
  std::string default_value;
  std::string help;
};

// Where a value came from, for --help and debugging.
enum class ConfigSource { kDefault, kFile, kEnv, kFlag };

class Config {
 public:
  // `section` is the service's name in the stack file ("engine", "gateway").
  // `env` is a list of "KEY=VALUE" strings (environ in production).
  // Unknown flags, a missing or unreadable config file, or a config file that
  // is not a YAML mapping are errors. `--help` yields a NotFound status whose
  // message is the usage text.
  static absl::StatusOr<Config> Load(std::string_view section, std::vector<OptionSpec> options,
                                     const std::vector<std::string>& args,
                                     const std::vector<std::string>& env);
  // Convenience over Load() with argv/environ.
  static absl::StatusOr<Config> FromProcess(std::string_view section,
                                            std::vector<OptionSpec> options, int argc,
                                            char** argv);

  const std::string& GetString(std::string_view name) const;
  absl::StatusOr<int64_t> GetInt(std::string_view name) const;
  absl::StatusOr<double> GetDouble(std::string_view name) const;
  absl::StatusOr<bool> GetBool(std::string_view name) const;
  // Durations are written as absl does: "500ms", "30s", "2m".
  absl::StatusOr<absl::Duration> GetDuration(std::string_view name) const;
  // Comma-separated list; empty entries dropped.
  std::vector<std::string> GetList(std::string_view name) const;
  ConfigSource SourceOf(std::string_view name) const;
  // Non-flag arguments, in order.
  const std::vector<std::string>& positional() const { return positional_; }

  std::string Usage() const;

 private:
  struct Entry {
    OptionSpec spec;
    std::string value;
    ConfigSource source = ConfigSource::kDefault;
  };
  const Entry& Get(std::string_view name) const;

  std::string section_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> positional_;
};

// Options every service has: listen, log_level, log_format, config, shutdown_grace,
// max_message_bytes. Append service-specific ones to this list.
std::vector<OptionSpec> CommonServiceOptions(std::string_view default_listen);

}  // namespace llmesh
