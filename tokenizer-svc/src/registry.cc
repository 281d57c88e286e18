#include "llmesh/tokenizer/registry.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace llmesh::tokenizer {
namespace fs = std::filesystem;

absl::Status ValidateModelName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("model name is empty");
  if (name.size() > 200) return absl::InvalidArgumentError("model name is longer than 200 characters");
  if (name[0] == '.')
    return absl::InvalidArgumentError(absl::StrCat("model name '", name, "' must not start with '.'"));
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok)
      return absl::InvalidArgumentError(
          absl::StrCat("model name '", name, "' may only contain letters, digits, '.', '_' and '-' (names, not paths)"));
  }
  return absl::OkStatus();
}

TokenizerRegistry::TokenizerRegistry(std::string model_dir) : model_dir_(std::move(model_dir)) {}

absl::StatusOr<std::shared_ptr<const Tokenizer>> TokenizerRegistry::Get(const std::string& name_in) {
  if (auto st = ValidateModelName(name_in); !st.ok()) return st;
  std::string name = name_in;
  if (absl::EndsWith(name, ".gguf")) name.resize(name.size() - 5);
  std::lock_guard lock(mu_);
  if (auto it = loaded_.find(name); it != loaded_.end()) return it->second;
  std::string path = absl::StrCat(model_dir_, "/", name, ".gguf");
  if (model_dir_.empty() || !fs::is_regular_file(path))
    return absl::NotFoundError(absl::StrCat("model '", name, "' not found in the model directory"));
  // Loading a vocabulary takes milliseconds; holding the lock keeps two
  // concurrent first requests from loading the same file twice.
  auto tok = Tokenizer::Load(path);
  if (!tok.ok())
    return absl::Status(tok.status().code(), absl::StrCat("model '", name, "': ", tok.status().message()));
  std::shared_ptr<const Tokenizer> shared(std::move(*tok));
  loaded_[name] = shared;
  return shared;
}

std::vector<std::string> TokenizerRegistry::Available() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(model_dir_, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".gguf") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace llmesh::tokenizer
