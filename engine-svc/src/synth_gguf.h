// What the model synthesizers (model_synth.cc, bert_synth.cc) do alike:
// look a shape up by name, check the weight type, write the general.* and a
// vocabulary's tokenizer.* keys, and fill the declared tensors row by row.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "llmesh/engine/model_quantize.h"
#include "llmesh/engine/quant_mix.h"
#include "llmesh/gguf/gguf_file.h"
#include "llmesh/gguf/gguf_writer.h"

namespace llmesh::engine::internal {

template <typename Shape>
std::vector<std::string> ShapeNames(std::span<const Shape> shapes) {
  std::vector<std::string> names;
  for (const Shape& s : shapes) names.push_back(s.name);
  return names;
}

// `what` ("shape", "bert shape") words the error for an unknown name.
template <typename Shape>
absl::StatusOr<Shape> ShapeByName(std::span<const Shape> shapes, std::string_view name, std::string_view what) {
  for (const Shape& s : shapes) {
    if (s.name == name) return s;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown ", std::string(what), " '", std::string(name), "' (known: ",
                                                 absl::StrJoin(ShapeNames(shapes), ", "), ")"));
}

// INVALID_ARGUMENT for a type weights cannot be synthesized in.
absl::Status CheckSynthType(gguf::GgmlType type);

// general.architecture, general.name, general.file_type and, for a
// quantized mix, general.quantization_version.
void SetGeneralKeys(gguf::GgufWriter& w, const std::string& arch, const std::string& name, const QuantMix& mix);

// Copies every tokenizer.* key of `vocab`; with pad_to above its size, the
// per-token arrays are padded with control tokens up to pad_to.
absl::Status CopyTokenizerKeys(const gguf::GgufFile& vocab, gguf::GgufWriter& w, int64_t pad_to = 0);

// Writes `w` to `path`, every tensor declared without data: rows_of(i) makes
// the rows of the i-th, converted to its type on `n_threads` threads.
// `progress` hears the bytes written out of all.
absl::Status WriteSynthesized(const gguf::GgufWriter& w, const std::string& path, int n_threads,
                              const ProgressFn& progress, const std::function<RowFn(size_t tensor)>& rows_of);

}  // namespace llmesh::engine::internal
