#include "llmesh/agent/tool.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace llmesh::agent {

absl::Status ValidateToolSpec(const v1::ToolSpec& spec) {
  const std::string& name = spec.name();
  if (name.empty() || name.size() > 64)
    return absl::InvalidArgumentError(absl::StrCat("tool name must be 1..64 characters, got ", name.size()));
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("tool name '", name, "': only [a-zA-Z0-9_-] allowed"));
  }
  if (spec.description().size() > 4096)
    return absl::InvalidArgumentError(absl::StrCat("tool '", name, "': description is longer than 4096 bytes"));
  const std::string& schema = spec.parameters_json_schema();
  if (schema.size() > 65536)
    return absl::InvalidArgumentError(absl::StrCat("tool '", name, "': parameters schema is longer than 64 KiB"));
  auto json = nlohmann::json::parse(schema, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    return absl::InvalidArgumentError(absl::StrCat("tool '", name, "': parameters schema is not a JSON object"));
  auto type = json.find("type");
  if (type == json.end() || !type->is_string() || type->get<std::string>() != "object")
    return absl::InvalidArgumentError(
        absl::StrCat("tool '", name, "': parameters schema must have \"type\": \"object\" (arguments are an object)"));
  return absl::OkStatus();
}

std::string TruncateUtf8(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  // Back up over continuation bytes (10xxxxxx) to the start of a character.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(text.substr(0, end), " [truncated]");
}

}  // namespace llmesh::agent
