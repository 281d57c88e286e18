// spdlog set-up shared by every binary: one logger, the service name on every
// line, text or JSON lines, quiet (info: lifecycle events only) by default.
// Log lines are key=value pairs: "event=listening address=127.0.0.1:50052".
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/fmt/fmt.h"

namespace llmesh {

// level: trace|debug|info|warn|error|off. format: text|json. Logs go to stderr.
absl::Status InitLogging(std::string_view service, std::string_view level,
                         std::string_view format = "text");

}  // namespace llmesh

// Debian's abseil has its own string_view type (not std::string_view); let
// spdlog/fmt print it, and absl::Status, directly.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};
template <>
struct fmt::formatter<absl::Status> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(const absl::Status& s, Ctx& ctx) const {
    std::string text = s.ToString();
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text), ctx);
  }
};
