#include "llmesh/common/logging.h"

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace llmesh {

absl::Status InitLogging(std::string_view service_sv, std::string_view level_sv,
                         std::string_view format_sv) {
  // Debian's abseil has its own string_view type: work on std::string here.
  const std::string service(service_sv), level(level_sv), format(format_sv);
  auto lvl = spdlog::level::from_str(level);
  // from_str maps anything unknown to "off"; only accept that when asked for.
  if (lvl == spdlog::level::off && level != "off")
    return absl::InvalidArgumentError(absl::StrCat("unknown log level '", level, "'"));
  std::string pattern;
  if (format == "text") {
    pattern = absl::StrCat("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ ", service, " %v");
  } else if (format == "json") {
    // Messages are written as key=value text; JSON-escaping is spdlog's %v as-is,
    // so messages must not contain quotes (ours do not).
    pattern = absl::StrCat(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","service":")", service,
                           R"(","msg":"%v"})");
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown log format '", format, "' (text or json)"));
  }
  std::string name = absl::StrCat("llmesh-", service);
  auto logger = spdlog::get(name);
  if (!logger) logger = spdlog::stderr_logger_mt(name);
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(pattern, spdlog::pattern_time_type::utc);
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::warn);
  return absl::OkStatus();
}

}  // namespace llmesh
