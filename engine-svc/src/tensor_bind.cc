#include "tensor_bind.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "llmesh/engine/quants.h"

namespace llmesh::engine::internal {
namespace {

std::string ShapeString(const gguf::TensorInfo& t) {
  std::string s = "[";
  for (int i = 0; i < t.n_dims; ++i) absl::StrAppend(&s, i ? ", " : "", t.ne[i]);
  return s + "]";
}

}  // namespace

absl::StatusOr<const gguf::TensorInfo*> ExpectTensor(const gguf::GgufFile& f,
                                                     const std::string& name, int64_t ne0,
                                                     int64_t ne1, bool required) {
  const gguf::TensorInfo* t = f.FindTensor(name);
  if (t == nullptr) {
    if (!required) return nullptr;
    return absl::InvalidArgumentError(absl::StrCat("missing tensor '", name, "'"));
  }
  const bool is_1d = ne1 == 0;
  const bool ok = is_1d ? (t->ne[0] == ne0 && t->n_rows() == 1)
                        : (t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s' has shape %s, expected %s", name, ShapeString(*t),
        is_1d ? absl::StrCat("[", ne0, "]") : absl::StrCat("[", ne0, ", ", ne1, "]")));
  }
  return t;
}

absl::StatusOr<const float*> ExpectF32Vector(const gguf::GgufFile& f, const std::string& name,
                                             int64_t n, bool required) {
  auto t = ExpectTensor(f, name, n, 0, required);
  if (!t.ok()) return t.status();
  if (*t == nullptr) return nullptr;
  if ((*t)->type != gguf::GgmlType::kF32) {
    // Norms and biases are F32 in every converter and quantizer output; a
    // different type means a file we do not understand.
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' must be F32, is ",
                                                   std::string(gguf::ggml_type_name((*t)->type))));
  }
  if (reinterpret_cast<uintptr_t>((*t)->data) % alignof(float) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' data is misaligned"));
  }
  return reinterpret_cast<const float*>((*t)->data);
}

absl::StatusOr<WeightView> ExpectMatrix(const gguf::GgufFile& f, const std::string& name,
                                        int64_t n_in, int64_t n_out) {
  auto t = ExpectTensor(f, name, n_in, n_out);
  if (!t.ok()) return t.status();
  auto row = gguf::ggml_row_size((*t)->type, n_in);
  if (!row) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tensor '%s': row of %d elements is not a whole number of %s blocks", name,
                        n_in, std::string(gguf::ggml_type_name((*t)->type))));
  }
  if (!IsSupportedType((*t)->type)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has type ",
                                                   std::string(gguf::ggml_type_name((*t)->type)),
                                                   " which the kernels do not support"));
  }
  return WeightView{(*t)->type, n_in, n_out, (*t)->data, *row};
}

}  // namespace llmesh::engine::internal
