// The loader rejects models whose metadata or tensors disagree, with errors
// naming the key or tensor at fault. Each case rewrites stories260K.
#include <functional>
#include <optional>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "llmesh/gguf/gguf_writer.h"
#include "model_test_util.h"

namespace llmesh::engine {
namespace {

struct Edit {
  std::string drop_key = {};                        // metadata key to leave out
  std::function<void(gguf::GgufWriter&)> set = {};  // extra keys, after the copy
  std::string rename_arch = {};                     // llama.* keys become <this>.*
  std::string drop_tensor = {};
  std::string reshape_tensor = {};  // gets reshape_dims (same byte count)
  std::vector<int64_t> reshape_dims = {};
};

absl::StatusOr<std::unique_ptr<Model>> LoadEdited(const Edit& e) {
  auto src = gguf::GgufFile::Open(testing::StoriesPath());
  if (!src.ok()) return src.status();
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : (*src)->metadata()) {
    if (kv.key == e.drop_key) continue;
    std::string key(kv.key);
    if (!e.rename_arch.empty() && key.starts_with("llama.")) key = e.rename_arch + key.substr(5);
    if (!e.rename_arch.empty() && key == "general.architecture") {
      w.SetString(key, e.rename_arch);
      continue;
    }
    if (auto s = w.SetValue(key, kv.value); !s.ok()) return s;
  }
  if (e.set) e.set(w);
  for (const gguf::TensorInfo& t : (*src)->tensors()) {
    if (t.name == e.drop_tensor) continue;
    std::vector<int64_t> dims(t.ne, t.ne + t.n_dims);
    if (t.name == e.reshape_tensor) dims = e.reshape_dims;
    if (auto s = w.AddTensorView(t.name, t.type, dims, {t.data, t.nbytes}); !s.ok()) return s;
  }
  auto f = gguf::GgufFile::FromBuffer(w.WriteToBuffer());
  if (!f.ok()) return f.status();
  return Model::FromGguf(std::move(*f));
}

void ExpectError(const Edit& e, const std::string& needle) {
  auto m = LoadEdited(e);
  ASSERT_FALSE(m.ok()) << "expected an error mentioning: " << needle;
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
  EXPECT_TRUE(absl::StrContains(m.status().message(), needle)) << m.status();
}

TEST(ModelLoad, UneditedCopyLoads) {
  auto m = LoadEdited({});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->params().n_layer, 5);
}

TEST(ModelLoad, MissingRequiredKeys) {
  for (const char* key : {"llama.embedding_length", "llama.block_count", "llama.context_length",
                          "llama.feed_forward_length", "llama.attention.head_count",
                          "llama.attention.layer_norm_rms_epsilon", "general.architecture"}) {
    SCOPED_TRACE(key);
    ExpectError({.drop_key = key}, std::string("missing required metadata key '") + key + "'");
  }
}

TEST(ModelLoad, UnknownArchitecture) {
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetString("general.architecture", "mamba"); }},
              "unknown architecture 'mamba'");
}

TEST(ModelLoad, KeyOfWrongType) {
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetString("llama.embedding_length", "64"); }},
              "llama.embedding_length");
}

TEST(ModelLoad, LayerCountBeyondLimit) {
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetU32("llama.block_count", 100000); }},
              "'llama.block_count' = 100000 out of range");
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetU32("llama.block_count", 0); }},
              "'llama.block_count' = 0 out of range");
}

TEST(ModelLoad, LayerCountDisagreesWithTensors) {
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetU32("llama.block_count", 6); }},
              "missing tensor 'blk.5.");
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetU32("llama.block_count", 4); }}, "'blk.4.");
}

TEST(ModelLoad, BadHeadCounts) {
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetU32("llama.attention.head_count_kv", 3); }},
              "llama.attention.head_count_kv");
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetU32("llama.attention.head_count", 7); }},
              "llama.attention.head_count");
}

TEST(ModelLoad, BadFloats) {
  ExpectError(
      {.set =
           [](gguf::GgufWriter& w) { w.SetF32("llama.attention.layer_norm_rms_epsilon", -1.0f); }},
      "llama.attention.layer_norm_rms_epsilon");
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetF32("llama.rope.freq_base", 0.0f); }},
              "llama.rope.freq_base");
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetString("llama.rope.scaling.type", "yarn2"); }},
              "llama.rope.scaling.type");
}

TEST(ModelLoad, MixtureOfExpertsRejected) {
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetU32("llama.expert_count", 8); }},
              "mixture-of-experts models ('llama.expert_count' = 8)");
}

TEST(ModelLoad, MissingTensor) {
  ExpectError({.drop_tensor = "output_norm.weight"}, "missing tensor 'output_norm.weight'");
  ExpectError({.drop_tensor = "blk.3.ffn_up.weight"}, "missing tensor 'blk.3.ffn_up.weight'");
  ExpectError({.drop_tensor = "token_embd.weight"}, "missing tensor 'token_embd.weight'");
}

TEST(ModelLoad, TensorShapeMismatch) {
  ExpectError({.reshape_tensor = "blk.0.attn_q.weight", .reshape_dims = {32, 128}},
              "tensor 'blk.0.attn_q.weight' has shape [32, 128], expected [64, 64]");
  ExpectError({.reshape_tensor = "blk.2.ffn_norm.weight", .reshape_dims = {32, 2}},
              "tensor 'blk.2.ffn_norm.weight' has shape [32, 2], expected [64]");
  ExpectError({.reshape_tensor = "blk.1.attn_k.weight", .reshape_dims = {32, 64}},
              "tensor 'blk.1.attn_k.weight'");
}

TEST(ModelLoad, VocabularyDisagreesWithEmbeddings) {
  ExpectError({.set = [](gguf::GgufWriter& w) { w.SetU32("llama.vocab_size", 1000); }},
              "llama.vocab_size");
}

TEST(ModelLoad, Qwen2NeedsBiases) {
  ExpectError({.rename_arch = "qwen2"}, "missing tensor 'blk.0.attn_q.bias'");
}

TEST(ModelLoad, TiedOutputWhenAbsent) {
  auto m = LoadEdited({.drop_tensor = "output.weight"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE((*m)->tied_output());
  EXPECT_EQ((*m)->output().data, (*m)->tok_embd().data);
}

TEST(ModelLoad, LinearAndLlama3RopeScaling) {
  auto lin = LoadEdited({.set = [](gguf::GgufWriter& w) {
    w.SetString("llama.rope.scaling.type", "linear");
    w.SetF32("llama.rope.scaling.factor", 4.0f);
  }});
  ASSERT_TRUE(lin.ok()) << lin.status();
  EXPECT_EQ((*lin)->params().rope_scaling, RopeScaling::kLinear);
  EXPECT_FLOAT_EQ((*lin)->params().rope_freq_scale, 0.25f);
  auto l3 = LoadEdited({.set = [](gguf::GgufWriter& w) {
    w.SetString("llama.rope.scaling.type", "llama3");
    w.SetF32("llama.rope.scaling.factor", 8.0f);
    w.SetF32("llama.rope.scaling.low_freq_factor", 1.0f);
    w.SetF32("llama.rope.scaling.high_freq_factor", 4.0f);
    w.SetU32("llama.rope.scaling.original_context_length", 16);
  }});
  ASSERT_TRUE(l3.ok()) << l3.status();
  EXPECT_EQ((*l3)->params().rope_scaling, RopeScaling::kLlama3);
  ASSERT_NE((*l3)->rope_freq_factors(), nullptr);
  // n_rot 8, base 1e4: wavelengths 6.3, 63, 628, 6283 vs the band (16/4, 16/1):
  // the first is blended, smooth = (16/6.283 - 1) / 3, the rest slowed by 8.
  const double smooth = (16.0 / (2 * 3.14159265358979) - 1.0) / 3.0;
  EXPECT_NEAR((*l3)->rope_freq_factors()[0], 1.0 / ((1.0 - smooth) / 8.0 + smooth), 1e-5);
  EXPECT_FLOAT_EQ((*l3)->rope_freq_factors()[1], 8.0f);
  EXPECT_FLOAT_EQ((*l3)->rope_freq_factors()[3], 8.0f);
}

}  // namespace
}  // namespace llmesh::engine
