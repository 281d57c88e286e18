// GgufWriter: every value type and tensor form round-trips through GgufFile,
// and rewriting a real file reproduces it byte for byte.
#include "llmesh/gguf/gguf_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "gguf_test_util.h"

namespace llmesh::gguf {
namespace {

using ::testing::HasSubstr;

const std::string kShared = LLMESH_SHARED_DIR;

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

std::unique_ptr<GgufFile> Parse(const std::vector<uint8_t>& bytes) {
  auto f = GgufFile::FromBuffer(bytes);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : nullptr;
}

TEST(GgufWriterTest, EveryScalarTypeRoundTrips) {
  GgufWriter w;
  w.SetU8("u8", 250);
  w.SetI8("i8", -120);
  w.SetU16("u16", 65000);
  w.SetI16("i16", -32000);
  w.SetU32("u32", 4000000000u);
  w.SetI32("i32", -2000000000);
  w.SetU64("u64", 18000000000000000000ull);
  w.SetI64("i64", -9000000000000000000ll);
  w.SetF32("f32", 1.5f);
  w.SetF64("f64", -2.25e300);
  w.SetBool("yes", true);
  w.SetBool("no", false);
  w.SetString("str", std::string_view("h\0llo \xe2\x9c\x93", 10));
  w.SetString("empty", "");
  auto f = Parse(w.WriteToBuffer());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->metadata().size(), 14u);
  EXPECT_EQ(f->metadata()[0].key, "u8");
  EXPECT_EQ(f->Find("u8")->type, ValueType::kUint8);
  EXPECT_EQ(*f->GetU64("u8"), 250u);
  EXPECT_EQ(f->Find("i8")->type, ValueType::kInt8);
  EXPECT_EQ(f->Find("i8")->as_i64(), -120);
  EXPECT_EQ(*f->GetU32("u16"), 65000u);
  EXPECT_EQ(f->Find("i16")->as_i64(), -32000);
  EXPECT_EQ(*f->GetU32("u32"), 4000000000u);
  EXPECT_EQ(f->Find("i32")->as_i64(), -2000000000);
  EXPECT_EQ(*f->GetU64("u64"), 18000000000000000000ull);
  EXPECT_EQ(f->Find("i64")->as_i64(), -9000000000000000000ll);
  EXPECT_EQ(*f->GetF32("f32"), 1.5f);
  EXPECT_EQ(f->Find("f64")->as_f64(), -2.25e300);
  EXPECT_EQ(*f->GetBool("yes"), true);
  EXPECT_EQ(*f->GetBool("no"), false);
  EXPECT_EQ(*f->GetString("str"), std::string_view("h\0llo \xe2\x9c\x93", 10));
  EXPECT_EQ(*f->GetString("empty"), "");
  EXPECT_THAT(f->GetU32("u64").status().message(), HasSubstr("does not fit in u32"));
  EXPECT_THAT(f->GetU64("i8").status().message(), HasSubstr("is negative"));
  EXPECT_THAT(f->GetF32("f64").status().message(), HasSubstr("does not fit in f32"));
  EXPECT_TRUE(f->tensors().empty());
}

TEST(GgufWriterTest, ArraysRoundTrip) {
  GgufWriter w;
  const std::vector<std::string> words = {"a", "", "longer word", "\xf0\x9f\x98\x80"};
  const std::vector<std::string_view> views = {"x", "y"};
  const std::vector<float> floats = {0.5f, -1.0f, 3.25f};
  const std::vector<int32_t> ints = {-1, 0, 7, INT32_MIN};
  const std::vector<uint32_t> uints = {0, 1, UINT32_MAX};
  w.SetStringArray("words", words);
  w.SetStringArray("views", views);
  w.SetF32Array("floats", floats);
  w.SetI32Array("ints", ints);
  w.SetU32Array("uints", uints);
  w.SetF32Array("none", std::span<const float>());

  // [[1, 2], [], [3]] of i16, [["p", "q"]], and bools through the generic setter.
  auto i16 = [](int64_t v) { return Value{ValueType::kInt16, ValueType::kUint8, v}; };
  Value nested{ValueType::kArray, ValueType::kArray,
               Array{Value{ValueType::kArray, ValueType::kInt16, Array{i16(1), i16(2)}},
                     Value{ValueType::kArray, ValueType::kInt16, Array{}},
                     Value{ValueType::kArray, ValueType::kInt16, Array{i16(3)}}}};
  ASSERT_TRUE(w.SetValue("nested", nested).ok());
  auto str = [](std::string_view s) { return Value{ValueType::kString, ValueType::kUint8, s}; };
  ASSERT_TRUE(w.SetValue("nested_str", Value{ValueType::kArray, ValueType::kArray,
                                             Array{Value{ValueType::kArray, ValueType::kString,
                                                         Array{str("p"), str("q")}}}})
                  .ok());
  auto b = [](bool v) { return Value{ValueType::kBool, ValueType::kUint8, v}; };
  ASSERT_TRUE(
      w.SetValue("bools", Value{ValueType::kArray, ValueType::kBool, Array{b(true), b(false)}}).ok());

  auto f = Parse(w.WriteToBuffer());
  ASSERT_NE(f, nullptr);
  auto got_words = f->GetStringArray("words");
  ASSERT_TRUE(got_words.ok());
  ASSERT_EQ(got_words->size(), words.size());
  for (size_t i = 0; i < words.size(); ++i) EXPECT_EQ((*got_words)[i], words[i]);
  EXPECT_THAT(*f->GetStringArray("views"), ::testing::ElementsAre("x", "y"));
  EXPECT_THAT(*f->GetF32Array("floats"), ::testing::ElementsAreArray(floats));
  EXPECT_THAT(*f->GetIntArray("ints"), ::testing::ElementsAre(-1, 0, 7, INT32_MIN));
  EXPECT_THAT(*f->GetIntArray("uints"), ::testing::ElementsAre(0, 1, UINT32_MAX));
  EXPECT_EQ(f->Find("uints")->array_type, ValueType::kUint32);
  EXPECT_TRUE(f->GetF32Array("none")->empty());

  const Value* n = f->Find("nested");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->array_type, ValueType::kArray);
  const Array* outer = n->as_array();
  ASSERT_EQ(outer->size(), 3u);
  EXPECT_EQ((*outer)[0].array_type, ValueType::kInt16);
  ASSERT_EQ((*outer)[0].as_array()->size(), 2u);
  EXPECT_EQ((*(*outer)[0].as_array())[1].as_i64(), 2);
  EXPECT_TRUE((*outer)[1].as_array()->empty());
  EXPECT_EQ((*(*outer)[2].as_array())[0].as_i64(), 3);
  const Array* ns = f->Find("nested_str")->as_array();
  EXPECT_EQ((*(*ns)[0].as_array())[1].as_string(), "q");
  const Array* bools = f->Find("bools")->as_array();
  EXPECT_EQ((*bools)[0].as_bool(), true);
  EXPECT_EQ((*bools)[1].as_bool(), false);

  // The parsed values re-encode to the same bytes.
  GgufWriter copy;
  ASSERT_TRUE(copy.CopyMetadata(*f).ok());
  EXPECT_EQ(copy.WriteToBuffer(), w.WriteToBuffer());
}

TEST(GgufWriterTest, SetValueRejectsInconsistentValues) {
  GgufWriter w;
  EXPECT_THAT(w.SetValue("k", Value{ValueType::kUint8, ValueType::kUint8, uint64_t{256}})
                  .message(),
              HasSubstr("key 'k': value does not fit in u8"));
  EXPECT_THAT(w.SetValue("k", Value{ValueType::kString, ValueType::kUint8, uint64_t{1}}).message(),
              HasSubstr("string value holds no string"));
  EXPECT_THAT(w.SetValue("k", Value{ValueType::kArray, ValueType::kInt32,
                                    Array{Value{ValueType::kInt8, ValueType::kUint8, int64_t{1}}}})
                  .message(),
              HasSubstr("array of i32 holds a i8 element"));
  Value deep{ValueType::kArray, ValueType::kUint8, Array{}};
  for (int i = 0; i < kMaxArrayDepth; ++i) {
    deep = Value{ValueType::kArray, ValueType::kArray, Array{deep}};
  }
  EXPECT_THAT(w.SetValue("k", deep).message(), HasSubstr("nested array depth"));
  EXPECT_EQ(w.kv_count(), 0u);
}

TEST(GgufWriterTest, SettingAKeyAgainReplacesItInPlace) {
  GgufWriter w;
  w.SetU32("a", 1);
  w.SetString("b", "x");
  w.SetString("a", "now a string");
  EXPECT_TRUE(w.HasKey("a"));
  auto f = Parse(w.WriteToBuffer());
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].key, "a");
  EXPECT_EQ(*f->GetString("a"), "now a string");
  w.RemoveKey("a");
  EXPECT_FALSE(w.HasKey("a"));
  EXPECT_TRUE(w.HasKey("b"));
  EXPECT_EQ(Parse(w.WriteToBuffer())->metadata().size(), 1u);
}

struct TensorCase {
  const char* name;
  GgmlType type;
  std::vector<int64_t> dims;
};

const std::vector<TensorCase>& Cases() {
  static const std::vector<TensorCase> kCases = {
      {"f32", GgmlType::kF32, {7}},          {"f16", GgmlType::kF16, {3, 5}},
      {"bf16", GgmlType::kBF16, {2, 3, 4}},  {"q4_0", GgmlType::kQ4_0, {64, 3}},
      {"q8_0", GgmlType::kQ8_0, {32, 2, 2, 2}}, {"q4_k", GgmlType::kQ4_K, {256, 2}},
      {"q6_k", GgmlType::kQ6_K, {512}},      {"i8", GgmlType::kI8, {5}},
      {"i32", GgmlType::kI32, {1, 1, 3}},
  };
  return kCases;
}

class GgufWriterAlignmentTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufWriterAlignmentTest, TensorsRoundTrip) {
  const uint32_t align = GetParam();
  GgufWriter w;
  w.SetString("general.architecture", "test");
  if (align != kDefaultAlignment) {
    ASSERT_TRUE(w.SetAlignment(align).ok());
  }
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < Cases().size(); ++i) {
    const TensorCase& c = Cases()[i];
    int64_t n = 1;
    for (int64_t d : c.dims) n *= d;
    const auto traits = *ggml_type_traits(c.type);
    data.push_back(RandomBytes(n / traits.block_size * traits.type_size, i));
    // Alternate owned and borrowed bytes.
    absl::Status st = i % 2 == 0 ? w.AddTensor(c.name, c.type, c.dims, data.back())
                                 : w.AddTensorView(c.name, c.type, c.dims, data.back());
    ASSERT_TRUE(st.ok()) << st;
  }
  const std::vector<uint8_t> bytes = w.WriteToBuffer();
  auto f = Parse(bytes);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->alignment(), align);
  ASSERT_EQ(f->tensors().size(), Cases().size());
  for (size_t i = 0; i < Cases().size(); ++i) {
    const TensorCase& c = Cases()[i];
    const TensorInfo& t = f->tensors()[i];
    EXPECT_EQ(t.name, c.name);
    EXPECT_EQ(t.type, c.type);
    for (size_t d = 0; d < 4; ++d) EXPECT_EQ(t.ne[d], d < c.dims.size() ? c.dims[d] : 1) << c.name;
    EXPECT_EQ(t.offset % align, 0u);
    ASSERT_EQ(t.nbytes, data[i].size());
    EXPECT_EQ(std::vector<uint8_t>(t.data, t.data + t.nbytes), data[i]) << c.name;
  }
  EXPECT_EQ(f->FindTensor("i32")->n_dims, 3);
  EXPECT_EQ(bytes.size() % align, 0u);  // llama.cpp pads after the last tensor too
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufWriterAlignmentTest,
                         ::testing::Values(1u, 2u, 8u, 32u, 64u, 4096u));

TEST(GgufWriterTest, TrailingUnitDimsAreTrimmedLikeGgml) {
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("t", GgmlType::kF32, {4, 1, 1}, std::vector<uint8_t>(16)).ok());
  EXPECT_THAT(w.tensors()[0].dims, ::testing::ElementsAre(4));
  auto f = Parse(w.WriteToBuffer());
  EXPECT_EQ(f->tensors()[0].n_dims, 1);
}

TEST(GgufWriterTest, StreamedTensorsMatchInMemoryOnes) {
  GgufWriter mem, streamed;
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < Cases().size(); ++i) {
    const TensorCase& c = Cases()[i];
    ASSERT_TRUE(streamed.DeclareTensor(c.name, c.type, c.dims).ok());
    data.push_back(RandomBytes(streamed.tensors()[i].nbytes, 100 + i));
    ASSERT_TRUE(mem.AddTensorView(c.name, c.type, c.dims, data.back()).ok());
  }
  size_t calls = 0;
  auto fill = [&](const TensorSpec& t, TensorSink& sink) -> absl::Status {
    EXPECT_EQ(t.name, Cases()[calls].name);  // called in declaration order
    const std::vector<uint8_t>& d = data[calls++];
    for (size_t at = 0; at < d.size(); at += 5) {  // odd chunks
      const size_t n = std::min<size_t>(5, d.size() - at);
      if (auto st = sink.Write(std::span<const uint8_t>(d).subspan(at, n)); !st.ok()) return st;
    }
    return absl::OkStatus();
  };
  EXPECT_EQ(streamed.WriteToBuffer(fill), mem.WriteToBuffer());
  EXPECT_EQ(calls, Cases().size());

  const std::string path = ::testing::TempDir() + "/streamed.gguf";
  calls = 0;
  ASSERT_TRUE(streamed.WriteFile(path, fill).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(std::vector<uint8_t>((*f)->tensors()[3].data,
                                 (*f)->tensors()[3].data + (*f)->tensors()[3].nbytes),
            data[3]);
}

TEST(GgufWriterTest, FillMustWriteExactlyTheDeclaredBytes) {
  GgufWriter w;
  ASSERT_TRUE(w.DeclareTensor("t", GgmlType::kF32, {4}).ok());
  EXPECT_THAT(w.WriteTo([](auto) { return absl::OkStatus(); }).message(),
              HasSubstr("declared without data and no fill callback"));
  auto too_few = [](const TensorSpec&, TensorSink& s) {
    return s.Write(std::vector<uint8_t>(15));
  };
  EXPECT_TRUE(w.WriteToBuffer(too_few).empty());
  const std::string path = ::testing::TempDir() + "/short.gguf";
  absl::Status st = w.WriteFile(path, too_few);
  EXPECT_THAT(st.message(), HasSubstr("tensor 't': fill wrote 15 bytes, expected 16"));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto too_many = [](const TensorSpec&, TensorSink& s) {
    return s.Write(std::vector<uint8_t>(17));
  };
  EXPECT_THAT(w.WriteFile(path, too_many).message(), HasSubstr("fill wrote more than its 16 bytes"));
  auto failing = [](const TensorSpec&, TensorSink&) { return absl::DataLossError("disk on fire"); };
  EXPECT_THAT(w.WriteFile(path, failing).message(), HasSubstr("disk on fire"));
}

TEST(GgufWriterTest, AddTensorValidates) {
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("a", GgmlType::kF32, {2}, std::vector<uint8_t>(8)).ok());
  EXPECT_THAT(w.AddTensor("a", GgmlType::kF32, {2}, std::vector<uint8_t>(8)).message(),
              HasSubstr("duplicate tensor name 'a'"));
  EXPECT_THAT(w.AddTensor("b", GgmlType::kF32, {2}, std::vector<uint8_t>(7)).message(),
              HasSubstr("7 data bytes given, its type and dims need 8"));
  EXPECT_THAT(w.DeclareTensor("c", GgmlType::kF32, {}).message(), HasSubstr("n_dims 0"));
  EXPECT_THAT(w.DeclareTensor("c", GgmlType::kF32, {1, 2, 3, 4, 5}).message(),
              HasSubstr("n_dims 5"));
  EXPECT_THAT(w.DeclareTensor("c", GgmlType::kF32, {4, 0}).message(),
              HasSubstr("dimension 1 is 0"));
  EXPECT_THAT(w.DeclareTensor("c", GgmlType::kF32, {int64_t{1} << 40, int64_t{1} << 40}).message(),
              HasSubstr("overflows"));
  EXPECT_THAT(w.DeclareTensor("c", GgmlType::kQ4_0, {33}).message(),
              HasSubstr("ne[0] = 33 is not a multiple of the block size 32"));
  EXPECT_THAT(w.DeclareTensor("c", static_cast<GgmlType>(4), {32}).message(),
              HasSubstr("unknown tensor type 4"));
  EXPECT_THAT(w.DeclareTensor(std::string(64, 'n'), GgmlType::kF32, {1}).message(),
              HasSubstr("name is 64 bytes long"));
  EXPECT_THAT(w.SetAlignment(0).message(), HasSubstr("0 is not a power of two in [1, 65536]"));
  EXPECT_THAT(w.SetAlignment(48).message(), HasSubstr("48 is not a power of two"));
  EXPECT_THAT(w.SetAlignment(1u << 17).message(), HasSubstr("131072 is not a power of two"));
  w.SetString(kAlignmentKey, "32");
  EXPECT_THAT(w.WriteTo([](auto) { return absl::OkStatus(); }).message(),
              HasSubstr("general.alignment must be a u32, got string"));
}

TEST(GgufWriterTest, RewritingStories260KIsByteIdentical) {
  const std::string path = kShared + "/models/stories260K.gguf";
  auto src = GgufFile::Open(path);
  ASSERT_TRUE(src.ok()) << src.status();
  GgufWriter w;
  ASSERT_TRUE(w.CopyMetadata(**src).ok());
  for (const TensorInfo& t : (*src)->tensors()) {
    std::vector<int64_t> dims(t.ne, t.ne + t.n_dims);
    ASSERT_TRUE(w.AddTensorView(t.name, t.type, dims, {t.data, t.nbytes}).ok());
  }
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> original((std::istreambuf_iterator<char>(in)),
                                      std::istreambuf_iterator<char>());
  const std::vector<uint8_t> rewritten = w.WriteToBuffer();
  ASSERT_EQ(rewritten.size(), original.size());
  EXPECT_TRUE(rewritten == original);
}

TEST(GgufWriterTest, CopiesAVocabularyFromAnotherFile) {
  auto vocab = GgufFile::Open(kShared + "/tokenizer-vectors/ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.tokens",
                          "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    ASSERT_TRUE(w.CopyKeyValue(**vocab, key).ok()) << key;
  }
  EXPECT_EQ(w.CopyKeyValue(**vocab, "no.such.key").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(w.AddTensor("token_embd.weight", GgmlType::kF32, {4, 2}, std::vector<uint8_t>(32)).ok());
  auto f = Parse(w.WriteToBuffer());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(*f->GetStringArray("tokenizer.ggml.tokens"),
            *(*vocab)->GetStringArray("tokenizer.ggml.tokens"));
  EXPECT_EQ(*f->GetF32Array("tokenizer.ggml.scores"),
            *(*vocab)->GetF32Array("tokenizer.ggml.scores"));
  EXPECT_EQ(*f->GetIntArray("tokenizer.ggml.token_type"),
            *(*vocab)->GetIntArray("tokenizer.ggml.token_type"));
}

}  // namespace
}  // namespace llmesh::gguf
