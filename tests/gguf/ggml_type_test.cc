#include "llmesh/gguf/ggml_type.h"

#include <gtest/gtest.h>

namespace llmesh::gguf {
namespace {

struct Expected {
  GgmlType type;
  const char* name;
  int64_t block_size;
  size_t type_size;
};

TEST(GgmlTypeTest, TraitsMatchGgml) {
  const Expected kAll[] = {
      {GgmlType::kF32, "f32", 1, 4},      {GgmlType::kF16, "f16", 1, 2},
      {GgmlType::kBF16, "bf16", 1, 2},    {GgmlType::kQ4_0, "q4_0", 32, 18},
      {GgmlType::kQ4_1, "q4_1", 32, 20},  {GgmlType::kQ5_0, "q5_0", 32, 22},
      {GgmlType::kQ5_1, "q5_1", 32, 24},  {GgmlType::kQ8_0, "q8_0", 32, 34},
      {GgmlType::kQ8_1, "q8_1", 32, 36},  {GgmlType::kQ2_K, "q2_K", 256, 84},
      {GgmlType::kQ3_K, "q3_K", 256, 110}, {GgmlType::kQ4_K, "q4_K", 256, 144},
      {GgmlType::kQ5_K, "q5_K", 256, 176}, {GgmlType::kQ6_K, "q6_K", 256, 210},
      {GgmlType::kQ8_K, "q8_K", 256, 292}, {GgmlType::kI8, "i8", 1, 1},
      {GgmlType::kI16, "i16", 1, 2},      {GgmlType::kI32, "i32", 1, 4},
      {GgmlType::kI64, "i64", 1, 8},      {GgmlType::kF64, "f64", 1, 8},
      {GgmlType::kIQ4_NL, "iq4_nl", 32, 18}, {GgmlType::kIQ4_XS, "iq4_xs", 256, 136},
      {GgmlType::kTQ1_0, "tq1_0", 256, 54}, {GgmlType::kTQ2_0, "tq2_0", 256, 66},
  };
  for (const Expected& e : kAll) {
    auto t = ggml_type_traits(e.type);
    ASSERT_TRUE(t.has_value()) << e.name;
    EXPECT_EQ(t->name, e.name);
    EXPECT_EQ(t->block_size, e.block_size) << e.name;
    EXPECT_EQ(t->type_size, e.type_size) << e.name;
    EXPECT_EQ(ggml_type_name(e.type), e.name);
    EXPECT_EQ(ggml_type_from_name(e.name), e.type);
  }
}

TEST(GgmlTypeTest, UnknownNumbersHaveNoTraits) {
  for (uint32_t n : {4u, 5u, 16u, 17u, 21u, 22u, 29u, 31u, 36u, 39u, 1000u, 0xFFFFFFFFu}) {
    EXPECT_FALSE(ggml_type_traits(n).has_value()) << n;
  }
}

TEST(GgmlTypeTest, NameLookupIsCaseInsensitive) {
  EXPECT_EQ(ggml_type_from_name("Q4_K"), GgmlType::kQ4_K);
  EXPECT_EQ(ggml_type_from_name("F16"), GgmlType::kF16);
  EXPECT_EQ(ggml_type_from_name("q4_k"), GgmlType::kQ4_K);
  EXPECT_FALSE(ggml_type_from_name("q4_2").has_value());
  EXPECT_FALSE(ggml_type_from_name("").has_value());
}

TEST(GgmlTypeTest, RowSize) {
  EXPECT_EQ(ggml_row_size(GgmlType::kF32, 64), 256u);
  EXPECT_EQ(ggml_row_size(GgmlType::kQ4_0, 64), 36u);
  EXPECT_EQ(ggml_row_size(GgmlType::kQ4_K, 4096), 16u * 144u);
  EXPECT_EQ(ggml_row_size(GgmlType::kQ8_0, 0), 0u);
  EXPECT_FALSE(ggml_row_size(GgmlType::kQ4_0, 33).has_value());
  EXPECT_FALSE(ggml_row_size(GgmlType::kQ6_K, 128).has_value());
  EXPECT_FALSE(ggml_row_size(GgmlType::kF32, -1).has_value());
  EXPECT_FALSE(ggml_row_size(static_cast<GgmlType>(4), 32).has_value());
  EXPECT_FALSE(ggml_row_size(GgmlType::kF64, INT64_MAX).has_value());  // bytes overflow
}

}  // namespace
}  // namespace llmesh::gguf
