// Tokenizers by model name, loaded on first use from a model directory and
// shared between callers. Names are file names without ".gguf"; anything that
// looks like a path is refused, so clients cannot read outside the directory.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace llmesh::tokenizer {

class TokenizerRegistry {
 public:
  explicit TokenizerRegistry(std::string model_dir);

  // NOT_FOUND for an unknown model, INVALID_ARGUMENT for a bad name, the
  // loader's error for a malformed file.
  absl::StatusOr<std::shared_ptr<const Tokenizer>> Get(const std::string& name);
  // Model names available in the directory (*.gguf).
  std::vector<std::string> Available() const;
  const std::string& model_dir() const { return model_dir_; }

 private:
  std::string model_dir_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Tokenizer>> loaded_;
};

// A model name is [A-Za-z0-9._-]+, not starting with '.', optionally ending in ".gguf".
absl::Status ValidateModelName(const std::string& name);

}  // namespace llmesh::tokenizer
