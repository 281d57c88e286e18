#include "llmesh/gguf/ggml_type.h"

#include <array>
#include <limits>

#include "absl/strings/match.h"

namespace llmesh::gguf {
namespace {

struct Entry {
  GgmlType type;
  GgmlTypeTraits traits;
};

// Sizes are ggml's (ggml-common.h): block_size elements packed in type_size bytes.
constexpr std::array<Entry, 24> kTypes = {{
    {GgmlType::kF32, {"f32", 1, 4}},
    {GgmlType::kF16, {"f16", 1, 2}},
    {GgmlType::kQ4_0, {"q4_0", 32, 18}},
    {GgmlType::kQ4_1, {"q4_1", 32, 20}},
    {GgmlType::kQ5_0, {"q5_0", 32, 22}},
    {GgmlType::kQ5_1, {"q5_1", 32, 24}},
    {GgmlType::kQ8_0, {"q8_0", 32, 34}},
    {GgmlType::kQ8_1, {"q8_1", 32, 36}},
    {GgmlType::kQ2_K, {"q2_K", 256, 84}},
    {GgmlType::kQ3_K, {"q3_K", 256, 110}},
    {GgmlType::kQ4_K, {"q4_K", 256, 144}},
    {GgmlType::kQ5_K, {"q5_K", 256, 176}},
    {GgmlType::kQ6_K, {"q6_K", 256, 210}},
    {GgmlType::kQ8_K, {"q8_K", 256, 292}},
    {GgmlType::kIQ4_NL, {"iq4_nl", 32, 18}},
    {GgmlType::kIQ4_XS, {"iq4_xs", 256, 136}},
    {GgmlType::kI8, {"i8", 1, 1}},
    {GgmlType::kI16, {"i16", 1, 2}},
    {GgmlType::kI32, {"i32", 1, 4}},
    {GgmlType::kI64, {"i64", 1, 8}},
    {GgmlType::kF64, {"f64", 1, 8}},
    {GgmlType::kBF16, {"bf16", 1, 2}},
    {GgmlType::kTQ1_0, {"tq1_0", 256, 54}},
    {GgmlType::kTQ2_0, {"tq2_0", 256, 66}},
}};

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type) {
  for (const Entry& e : kTypes) {
    if (static_cast<uint32_t>(e.type) == type) return e.traits;
  }
  return std::nullopt;
}

std::string_view ggml_type_name(GgmlType t) {
  std::optional<GgmlTypeTraits> traits = ggml_type_traits(t);
  return traits ? traits->name : std::string_view("unknown");
}

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  for (const Entry& e : kTypes) {
    if (absl::EqualsIgnoreCase(absl::string_view(e.traits.name.data(), e.traits.name.size()),
                               absl::string_view(name.data(), name.size()))) return e.type;
  }
  return std::nullopt;
}

std::optional<size_t> ggml_row_size(GgmlType t, int64_t n) {
  std::optional<GgmlTypeTraits> traits = ggml_type_traits(t);
  if (!traits || n < 0 || n % traits->block_size != 0) return std::nullopt;
  const uint64_t blocks = static_cast<uint64_t>(n / traits->block_size);
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, traits->type_size, &bytes) ||
      bytes > std::numeric_limits<size_t>::max()) {
    return std::nullopt;
  }
  return static_cast<size_t>(bytes);
}

}  // namespace llmesh::gguf
