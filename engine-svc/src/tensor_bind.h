// Binding GGUF tensors to a model's weights, shared by the model loaders
// (model.cc for llama/qwen2, bert_model.cc): look a tensor up, check its
// shape and type, and hand out a zero-copy view. Errors name the tensor.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "llmesh/engine/matmul.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::engine::internal {

// Looks up `name` and checks it is exactly (ne0) when ne1 == 0, else
// (ne0, ne1). A missing tensor is an error when `required`, else nullptr.
absl::StatusOr<const gguf::TensorInfo*> ExpectTensor(const gguf::GgufFile& f,
                                                     const std::string& name, int64_t ne0,
                                                     int64_t ne1, bool required = true);

// An (n) F32 vector (norm weights, biases), or nullptr when absent and not
// `required`.
absl::StatusOr<const float*> ExpectF32Vector(const gguf::GgufFile& f, const std::string& name,
                                             int64_t n, bool required = true);

// An (n_out, n_in) matrix of any type the kernels support.
absl::StatusOr<WeightView> ExpectMatrix(const gguf::GgufFile& f, const std::string& name,
                                        int64_t n_in, int64_t n_out);

}  // namespace llmesh::engine::internal
