// Tensor element types as GGUF numbers them (ggml's enum ggml_type), and their
// block geometry. Block layouts themselves live with the kernels (engine-svc);
// the loader only needs sizes to validate a file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace llmesh::gguf {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ4_NL = 20,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

struct GgmlTypeTraits {
  std::string_view name;   // "q4_0", as llama.cpp prints it
  int64_t block_size;      // elements per block (1 for plain types)
  size_t type_size;        // bytes per block
};

// Traits of a type this project knows, or nullopt for any other number
// (a file naming an unknown type is rejected by the loader with its number).
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type);
inline std::optional<GgmlTypeTraits> ggml_type_traits(GgmlType t) {
  return ggml_type_traits(static_cast<uint32_t>(t));
}
std::string_view ggml_type_name(GgmlType t);
// Case-insensitive lookup by name ("Q4_K", "f16").
std::optional<GgmlType> ggml_type_from_name(std::string_view name);

// Bytes of one row of n elements; nullopt when n is not a multiple of the
// block size or the type is unknown.
std::optional<size_t> ggml_row_size(GgmlType t, int64_t n);

}  // namespace llmesh::gguf
