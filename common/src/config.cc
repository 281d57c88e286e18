#include "llmesh/common/config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "yaml-cpp/yaml.h"

extern char** environ;

namespace llmesh {
namespace {

std::string Normalize(std::string_view flag) {
  std::string s(flag);
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

std::string EnvName(std::string_view section, std::string_view option) {
  std::string s = absl::StrCat("LLMESH_", std::string(section), "_", std::string(option));
  for (char& c : s) c = (c == '-' || c == '.') ? '_' : absl::ascii_toupper(c);
  return s;
}

// A YAML scalar as text; a sequence of scalars as a comma-joined list.
absl::StatusOr<std::string> YamlValue(const YAML::Node& node, std::string_view key) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) {
    std::vector<std::string> parts;
    for (const auto& item : node) {
      if (!item.IsScalar())
        return absl::InvalidArgumentError(absl::StrCat("config key '", std::string(key), "': list items must be scalars"));
      parts.push_back(item.Scalar());
    }
    return absl::StrJoin(parts, ",");
  }
  if (node.IsNull()) return std::string();
  return absl::InvalidArgumentError(absl::StrCat("config key '", std::string(key), "' must be a scalar or a list"));
}

}  // namespace

std::vector<OptionSpec> CommonServiceOptions(std::string_view default_listen) {
  return {
      {"config", "", "Stack config file (YAML); also LLMESH_CONFIG"},
      {"listen", std::string(default_listen), "host:port to serve gRPC on (port 0 picks a free one)"},
      {"log_level", "info", "trace, debug, info, warn, error or off"},
      {"log_format", "text", "text or json"},
      {"shutdown_grace", "10s", "How long SIGTERM waits for in-flight RPCs before cancelling them"},
      {"max_message_bytes", "67108864", "Largest gRPC message accepted or sent, in bytes"},
      {"port_file", "", "If set, the bound port is written here once serving (for tests and launchers)"},
      {"cluster_token", "",
       "Shared secret of the stack: required on every internal RPC served, sent on every one made "
       "(also LLMESH_CLUSTER_TOKEN). Empty: internal RPCs are open"},
      {"cluster_token_file", "", "File holding cluster_token (also LLMESH_CLUSTER_TOKEN_FILE)"},
  };
}

absl::StatusOr<Config> Config::FromProcess(std::string_view section,
                                           std::vector<OptionSpec> options, int argc,
                                           char** argv) {
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return Load(section, std::move(options), args, env);
}

absl::StatusOr<Config> Config::Load(std::string_view section, std::vector<OptionSpec> options,
                                    const std::vector<std::string>& args,
                                    const std::vector<std::string>& env) {
  Config cfg;
  cfg.section_ = std::string(section);
  for (auto& o : options) {
    std::string name = o.name;
    cfg.entries_[name] = Entry{std::move(o), {}, ConfigSource::kDefault};
    cfg.entries_[name].value = cfg.entries_[name].spec.default_value;
  }

  // Flags are parsed first (they win), but applied last.
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view a = args[i];
    if (a == "--help" || a == "-h") return absl::NotFoundError(cfg.Usage());
    if (!absl::ConsumePrefix(&a, "--")) {
      cfg.positional_.emplace_back(a);
      continue;
    }
    std::string name, value;
    if (auto eq = a.find('='); eq != absl::string_view::npos) {
      name = Normalize(std::string(a.substr(0, eq)));
      value = std::string(a.substr(eq + 1));
    } else {
      name = Normalize(std::string(a));
      auto it = cfg.entries_.find(name);
      bool is_bool = it != cfg.entries_.end() &&
                     (it->second.spec.default_value == "true" || it->second.spec.default_value == "false");
      bool next_is_bool = i + 1 < args.size() && (args[i + 1] == "true" || args[i + 1] == "false");
      if (is_bool && !next_is_bool) {
        value = "true";  // bare boolean flag
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (!cfg.entries_.contains(name))
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, "\n", cfg.Usage()));
    flags[name] = value;
  }

  std::map<std::string, std::string> envmap;
  for (const auto& kv : env) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) envmap[kv.substr(0, eq)] = kv.substr(eq + 1);
  }

  // The config file path itself may come from a flag or the environment.
  std::string file;
  if (flags.contains("config")) file = flags["config"];
  else if (envmap.contains("LLMESH_CONFIG")) file = envmap["LLMESH_CONFIG"];
  if (!file.empty()) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(file);
    } catch (const YAML::BadFile&) {
      return absl::NotFoundError(absl::StrCat("cannot read config file '", file, "'"));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("config file '", file, "': ", e.what()));
    }
    if (!root.IsMap() && !root.IsNull())
      return absl::InvalidArgumentError(absl::StrCat("config file '", file, "' must be a YAML mapping"));
    // `common` first so the service's own section overrides it.
    for (const char* sec : {"common", cfg.section_.c_str()}) {
      YAML::Node node = root[sec];
      if (!node || node.IsNull()) continue;
      if (!node.IsMap())
        return absl::InvalidArgumentError(absl::StrCat("config file '", file, "': section '", sec, "' must be a mapping"));
      for (const auto& kv : node) {
        std::string key = Normalize(kv.first.Scalar());
        auto it = cfg.entries_.find(key);
        if (it == cfg.entries_.end()) continue;  // other tools' keys share the file
        auto v = YamlValue(kv.second, absl::StrCat(sec, ".", key));
        if (!v.ok()) return v.status();
        it->second.value = *v;
        it->second.source = ConfigSource::kFile;
      }
    }
    cfg.entries_["config"].value = file;
  }

  for (auto& [name, entry] : cfg.entries_) {
    if (auto it = envmap.find(EnvName(cfg.section_, name)); it != envmap.end()) {
      entry.value = it->second;
      entry.source = ConfigSource::kEnv;
    }
  }
  for (auto& [name, value] : flags) {
    cfg.entries_[name].value = value;
    cfg.entries_[name].source = ConfigSource::kFlag;
  }
  return cfg;
}

const Config::Entry& Config::Get(std::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    // A typo in our own code, not user input: fail loudly in every build.
    std::fprintf(stderr, "llmesh: option '%.*s' was never declared\n", static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return it->second;
}

const std::string& Config::GetString(std::string_view name) const { return Get(name).value; }

absl::StatusOr<int64_t> Config::GetInt(std::string_view name) const {
  int64_t v;
  if (!absl::SimpleAtoi(Get(name).value, &v))
    return absl::InvalidArgumentError(absl::StrCat("option ", std::string(name), ": '", Get(name).value, "' is not an integer"));
  return v;
}

absl::StatusOr<double> Config::GetDouble(std::string_view name) const {
  double v;
  if (!absl::SimpleAtod(Get(name).value, &v))
    return absl::InvalidArgumentError(absl::StrCat("option ", std::string(name), ": '", Get(name).value, "' is not a number"));
  return v;
}

absl::StatusOr<bool> Config::GetBool(std::string_view name) const {
  bool v;
  if (!absl::SimpleAtob(Get(name).value, &v))
    return absl::InvalidArgumentError(absl::StrCat("option ", std::string(name), ": '", Get(name).value, "' is not a boolean"));
  return v;
}

absl::StatusOr<absl::Duration> Config::GetDuration(std::string_view name) const {
  absl::Duration d;
  if (!absl::ParseDuration(Get(name).value, &d))
    return absl::InvalidArgumentError(absl::StrCat("option ", std::string(name), ": '", Get(name).value,
                                                   "' is not a duration (e.g. 500ms, 30s)"));
  return d;
}

std::vector<std::string> Config::GetList(std::string_view name) const {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(Get(name).value, ',', absl::SkipWhitespace()))
    out.emplace_back(absl::StripAsciiWhitespace(part));
  return out;
}

ConfigSource Config::SourceOf(std::string_view name) const { return Get(name).source; }

std::string Config::Usage() const {
  std::string out = absl::StrCat("Options (flag --name, env LLMESH_", absl::AsciiStrToUpper(section_),
                                 "_NAME, or key ", section_, ".name in the config file):\n");
  for (const auto& [name, e] : entries_) {
    std::string flag = name;
    std::replace(flag.begin(), flag.end(), '_', '-');
    absl::StrAppend(&out, "  --", flag, "  ", e.spec.help);
    if (!e.spec.default_value.empty()) absl::StrAppend(&out, " [default: ", e.spec.default_value, "]");
    out += "\n";
  }
  return out;
}

}  // namespace llmesh
