// Loading real GGUF files: the stories260K model and the tokenizer vocabularies.
#include "llmesh/gguf/gguf_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gguf_test_util.h"

namespace llmesh::gguf {
namespace {

using ::testing::HasSubstr;

const std::string kShared = LLMESH_SHARED_DIR;
const std::string kStories = kShared + "/models/stories260K.gguf";

TEST(GgufFileTest, LoadsStories260K) {
  auto f = GgufFile::Open(kStories);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.file_size(), std::filesystem::file_size(kStories));
  EXPECT_EQ(g.metadata().size(), 19u);
  EXPECT_EQ(*g.GetString("general.architecture"), "llama");
  EXPECT_EQ(*g.GetU32("llama.embedding_length"), 64u);
  EXPECT_EQ(*g.GetU32("llama.block_count"), 5u);
  EXPECT_EQ(*g.GetU32("llama.attention.head_count"), 8u);
  EXPECT_EQ(*g.GetU32("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(*g.GetU32("llama.feed_forward_length"), 172u);
  EXPECT_EQ(*g.GetU32("llama.context_length"), 512u);
  EXPECT_EQ(*g.GetU64("llama.rope.dimension_count"), 8u);
  EXPECT_FLOAT_EQ(*g.GetF32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(*g.GetU32("tokenizer.ggml.seperator_token_id"), 0xFFFFFFFFu);

  auto tokens = g.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  EXPECT_EQ(g.GetF32Array("tokenizer.ggml.scores")->size(), 512u);
  auto types = g.GetIntArray("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(types->size(), 512u);
  EXPECT_EQ((*types)[0], 2);  // unknown
  EXPECT_EQ((*types)[1], 3);  // control

  // 2 global tensors + output + 9 per layer.
  ASSERT_EQ(g.tensors().size(), 3u + 5u * 9u);
  const TensorInfo* emb = g.FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, GgmlType::kF32);
  EXPECT_EQ(emb->n_dims, 2);
  EXPECT_EQ(emb->ne[0], 64);
  EXPECT_EQ(emb->ne[1], 512);
  EXPECT_EQ(emb->ne[2], 1);
  EXPECT_EQ(emb->nbytes, 64u * 512u * 4u);
  EXPECT_EQ(emb->n_elements(), 64 * 512);
  EXPECT_EQ(emb->n_rows(), 512);
  EXPECT_EQ(&g.tensors()[0], emb);
  struct Shape {
    const char* name;
    int n_dims;
    int64_t ne0, ne1;
  };
  for (const Shape& s : {Shape{"output_norm.weight", 1, 64, 1}, Shape{"output.weight", 2, 64, 512},
                         Shape{"blk.0.attn_q.weight", 2, 64, 64},
                         Shape{"blk.4.attn_k.weight", 2, 64, 32},
                         Shape{"blk.2.attn_v.weight", 2, 64, 32},
                         Shape{"blk.3.ffn_gate.weight", 2, 64, 172},
                         Shape{"blk.3.ffn_down.weight", 2, 172, 64},
                         Shape{"blk.1.ffn_norm.weight", 1, 64, 1}}) {
    const TensorInfo* t = g.FindTensor(s.name);
    ASSERT_NE(t, nullptr) << s.name;
    EXPECT_EQ(t->n_dims, s.n_dims) << s.name;
    EXPECT_EQ(t->ne[0], s.ne0) << s.name;
    EXPECT_EQ(t->ne[1], s.ne1) << s.name;
  }
  EXPECT_EQ(g.FindTensor("blk.5.attn_q.weight"), nullptr);
  for (const TensorInfo& t : g.tensors()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, 0u) << t.name;  // mmap is page aligned
    EXPECT_EQ(t.offset % 32, 0u) << t.name;
    EXPECT_EQ(t.data - emb->data, static_cast<ptrdiff_t>(t.offset)) << t.name;
  }
  EXPECT_GT(testing::TouchAll(g), 0u);
}

TEST(GgufFileTest, FromBufferMatchesOpen) {
  std::ifstream in(kStories, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto a = GgufFile::Open(kStories);
  auto b = GgufFile::FromBuffer(bytes);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*b)->path(), "<buffer>");
  ASSERT_EQ((*a)->tensors().size(), (*b)->tensors().size());
  for (size_t i = 0; i < (*a)->tensors().size(); ++i) {
    const TensorInfo& x = (*a)->tensors()[i];
    const TensorInfo& y = (*b)->tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.offset, y.offset);
    EXPECT_EQ(0, std::memcmp(x.data, y.data, x.nbytes));
  }
}

TEST(GgufFileTest, LoadsEveryTokenizerVocabulary) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(kShared + "/tokenizer-vectors")) {
    if (e.path().extension() != ".gguf") continue;
    ++n;
    auto f = GgufFile::Open(e.path().string());
    ASSERT_TRUE(f.ok()) << f.status();
    const GgufFile& g = **f;
    EXPECT_EQ(g.version(), 3u);
    EXPECT_TRUE(g.tensors().empty()) << e.path();
    EXPECT_TRUE(g.GetString("general.architecture").ok()) << e.path();
    EXPECT_TRUE(g.GetString("tokenizer.ggml.model").ok()) << e.path();
    auto tokens = g.GetStringArray("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    EXPECT_GT(tokens->size(), 1000u) << e.path();
    if (g.Find("tokenizer.ggml.token_type") != nullptr) {
      EXPECT_EQ(g.GetIntArray("tokenizer.ggml.token_type")->size(), tokens->size());
    }
    if (g.Find("tokenizer.ggml.scores") != nullptr) {
      EXPECT_EQ(g.GetF32Array("tokenizer.ggml.scores")->size(), tokens->size());
    }
    testing::TouchAll(g);
  }
  EXPECT_EQ(n, 3);
}

TEST(GgufFileTest, FuzzSeedsAreValid) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(LLMESH_SOURCE_DIR) +
                                                           "/tests/fuzz/corpus/gguf_fuzz")) {
    ++n;
    auto f = GgufFile::Open(e.path().string());
    ASSERT_TRUE(f.ok()) << f.status();
    testing::TouchAll(**f);
  }
  EXPECT_GE(n, 5);
}

TEST(GgufFileTest, TypedGettersReportAbsentAndMistypedKeys) {
  auto f = GgufFile::Open(kStories);
  ASSERT_TRUE(f.ok());
  const GgufFile& g = **f;
  EXPECT_EQ(g.GetU32("no.such.key").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(g.GetU32("no.such.key").status().message(), HasSubstr("no.such.key"));
  auto s = g.GetString("llama.block_count");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("'llama.block_count' is a u32, expected a string"));
  EXPECT_THAT(g.GetU64("general.name").status().message(), HasSubstr("is a string"));
  EXPECT_THAT(g.GetBool("llama.block_count").status().message(), HasSubstr("expected a bool"));
  EXPECT_THAT(g.GetStringArray("tokenizer.ggml.scores").status().message(),
              HasSubstr("is an array of f32, expected an array of string"));
  EXPECT_THAT(g.GetF32Array("tokenizer.ggml.tokens").status().message(),
              HasSubstr("array of string"));
  EXPECT_THAT(g.GetIntArray("tokenizer.ggml.tokens").status().message(),
              HasSubstr("expected an array of integers"));
  EXPECT_THAT(g.GetU32("tokenizer.ggml.tokens").status().message(), HasSubstr("is an array"));
  EXPECT_FALSE(g.GetF32("general.name").ok());
}

TEST(GgufFileTest, OpenReportsMissingAndNonRegularFiles) {
  auto missing = GgufFile::Open("/nonexistent/model.gguf");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/model.gguf"));
  auto dir = GgufFile::Open(kShared);
  EXPECT_THAT(dir.status().message(), HasSubstr("not a regular file"));

  const std::string empty = ::testing::TempDir() + "/empty.gguf";
  std::ofstream(empty).close();
  auto e = GgufFile::Open(empty);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("empty.gguf: truncated header"));
}

TEST(GgufValueTest, NumericConversions) {
  Value u{ValueType::kUint64, ValueType::kUint8, uint64_t{1} << 63};
  EXPECT_EQ(u.as_u64(), uint64_t{1} << 63);
  EXPECT_FALSE(u.as_i64().has_value());
  EXPECT_EQ(u.as_f64(), 9223372036854775808.0);
  Value neg{ValueType::kInt32, ValueType::kUint8, int64_t{-5}};
  EXPECT_FALSE(neg.as_u64().has_value());
  EXPECT_EQ(neg.as_i64(), -5);
  Value f{ValueType::kFloat32, ValueType::kUint8, 3.0};
  EXPECT_EQ(f.as_u64(), 3u);
  EXPECT_EQ(f.as_i64(), 3);
  Value half{ValueType::kFloat32, ValueType::kUint8, 3.5};
  EXPECT_FALSE(half.as_u64().has_value());
  Value huge{ValueType::kFloat64, ValueType::kUint8, 1e30};
  EXPECT_FALSE(huge.as_u64().has_value());
  EXPECT_FALSE(huge.as_i64().has_value());
  Value nan{ValueType::kFloat64, ValueType::kUint8, std::nan("")};
  EXPECT_FALSE(nan.as_i64().has_value());
  Value b{ValueType::kBool, ValueType::kUint8, true};
  EXPECT_EQ(b.as_bool(), true);
  EXPECT_FALSE(b.as_u64().has_value());
  EXPECT_EQ(b.as_array(), nullptr);
  EXPECT_EQ(value_type_name(ValueType::kFloat64), "f64");
}

}  // namespace
}  // namespace llmesh::gguf
