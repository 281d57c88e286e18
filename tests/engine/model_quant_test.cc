// Quantized models stay close to their F32 original, and the synthesizer and
// quantizer write what the loader expects.
#include <fstream>
#include <iterator>

#include "gtest/gtest.h"
#include "llmesh/engine/decoder_reference.h"
#include "llmesh/engine/model_quantize.h"
#include "model_test_util.h"

namespace llmesh::engine {
namespace {

using gguf::GgmlType;
using testing::Cosine;
using testing::LoadOrDie;

const std::vector<TokenId> kTokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};

struct TypeTol {
  GgmlType type;
  double min_cos_vs_f32;  // logits of the quantized model vs the F32 model
  double min_cos_vs_ref;  // fast path vs the reference on the same (dequantized) weights
};
// Measured on the tiny random model (2 layers, weights N(0, 0.02), 12
// positions): f16 1.000000, bf16 0.99998, q8_0 0.99985, q6_K 0.9986, q5_K
// 0.9953, q5_1 0.9952, q5_0 0.9917, q4_K 0.981, q4_1 0.975, q4_0 0.974,
// q3_K 0.906, q2_K 0.772 vs F32; >= 0.99984 vs the reference for every type.
// Bounds leave margin for other seeds and SIMD levels. The vs-ref bound is
// the on-the-fly Q8 quantization of activations (the reference multiplies
// the same dequantized weights in float).
const TypeTol kTypes[] = {
    {GgmlType::kF16, 0.99999, 0.99999}, {GgmlType::kBF16, 0.9999, 0.9999},
    {GgmlType::kQ8_0, 0.9995, 0.9995},  {GgmlType::kQ6_K, 0.997, 0.9995},
    {GgmlType::kQ5_K, 0.99, 0.9995},    {GgmlType::kQ5_1, 0.99, 0.9995},
    {GgmlType::kQ5_0, 0.985, 0.9995},   {GgmlType::kQ4_K, 0.96, 0.9995},
    {GgmlType::kQ4_1, 0.95, 0.9995},    {GgmlType::kQ4_0, 0.95, 0.9995},
    {GgmlType::kQ3_K, 0.85, 0.9995},    {GgmlType::kQ2_K, 0.65, 0.9995},
};

class QuantizedModel : public ::testing::TestWithParam<TypeTol> {
 protected:
  static void SetUpTestSuite() {
    f32_path_ = new std::string(testing::SynthTiny(Arch::kLlama, GgmlType::kF32, "q_base"));
  }
  static void TearDownTestSuite() { delete f32_path_; }
  static std::string* f32_path_;
};
std::string* QuantizedModel::f32_path_ = nullptr;

TEST_P(QuantizedModel, StaysCloseToF32) {
  const TypeTol& tt = GetParam();
  const std::string name(gguf::ggml_type_name(tt.type));
  const std::string out = testing::TempPath("quant_" + name + ".gguf");
  QuantizeOptions o;
  o.type = tt.type;
  o.pure = true;
  o.n_threads = 2;
  ASSERT_TRUE(QuantizeModel(*f32_path_, out, o).ok());
  auto f32 = LoadOrDie(*f32_path_);
  auto q = LoadOrDie(out);
  ASSERT_TRUE(f32 && q);
  EXPECT_EQ(q->layers()[0].wq.type, tt.type);
  EXPECT_EQ(q->tok_embd().type, tt.type);

  ThreadPool pool(2);
  auto want = testing::PrefillAll(*f32, pool, kTokens);
  auto got = testing::PrefillAll(*q, pool, kTokens);
  DecoderReference ref(*q, 64);
  double worst_f32 = 1.0, worst_ref = 1.0;
  for (size_t i = 0; i < kTokens.size(); ++i) {
    worst_f32 = std::min(worst_f32, Cosine(got[i], want[i]));
    worst_ref =
        std::min(worst_ref, Cosine(got[i], ref.Forward(kTokens[i], static_cast<int32_t>(i))));
  }
  RecordProperty("min_cos_vs_f32", std::to_string(worst_f32));
  RecordProperty("min_cos_vs_ref", std::to_string(worst_ref));
  EXPECT_GE(worst_f32, tt.min_cos_vs_f32) << name;
  EXPECT_GE(worst_ref, tt.min_cos_vs_ref) << name;
  std::printf("%-5s cos vs f32 %.6f, vs ref %.7f\n", name.c_str(), worst_f32, worst_ref);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantizedModel, ::testing::ValuesIn(kTypes),
                         [](const auto& info) {
                           return std::string(gguf::ggml_type_name(info.param.type));
                         });

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

TEST(Synth, DeterministicAcrossThreadCounts) {
  auto vocab = gguf::GgufFile::Open(testing::StoriesPath());
  ASSERT_TRUE(vocab.ok());
  SynthOptions o;
  o.shape = testing::TinyShape(Arch::kLlama);
  o.type = GgmlType::kQ4_0;
  o.vocab = vocab->get();
  o.seed = 3;
  const std::string a = testing::TempPath("det_a.gguf");
  const std::string b = testing::TempPath("det_b.gguf");
  o.n_threads = 1;
  ASSERT_TRUE(SynthesizeModel(o, a).ok());
  o.n_threads = 2;
  ASSERT_TRUE(SynthesizeModel(o, b).ok());
  EXPECT_EQ(ReadAll(a), ReadAll(b));
  o.seed = 4;
  ASSERT_TRUE(SynthesizeModel(o, b).ok());
  EXPECT_NE(ReadAll(a), ReadAll(b));
}

TEST(Synth, WritesRealShapeMetadataAndLlamaCppTypeMix) {
  auto m = LoadOrDie(testing::SynthTiny(Arch::kLlama, GgmlType::kQ4_0, "mix", /*pure=*/false));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->layers()[1].w_down.type, GgmlType::kQ4_0);
  EXPECT_EQ(m->output().type, GgmlType::kQ6_K);  // lm head kept at Q6_K, as llama.cpp does
  EXPECT_EQ(m->params().n_vocab, 512);
  EXPECT_TRUE(m->file().Find("tokenizer.ggml.tokens") != nullptr);
  EXPECT_TRUE(m->file().Find("tokenizer.ggml.bos_token_id") != nullptr);
  const gguf::TensorInfo* norm = m->file().FindTensor("blk.0.attn_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->type, GgmlType::kF32);
  EXPECT_EQ(reinterpret_cast<const float*>(norm->data)[5], 1.0f);
}

TEST(Synth, KnownShapesAndLlama3RopeScaling) {
  for (const std::string& name : SynthShapeNames()) EXPECT_TRUE(SynthShapeByName(name).ok());
  EXPECT_FALSE(SynthShapeByName("gpt-5").ok());
  auto sh = SynthShapeByName("llama3.2-1b");
  ASSERT_TRUE(sh.ok());
  // Shrink it but keep the llama3 rope scaling and tied output.
  sh->n_layer = 1;
  sh->n_ff = 256;
  SynthOptions o;
  o.shape = *sh;
  o.n_vocab = 300;  // no vocabulary file: no tokenizer keys
  const std::string path = testing::TempPath("llama3.gguf");
  ASSERT_TRUE(SynthesizeModel(o, path).ok());
  auto m = LoadOrDie(path);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->params().rope_scaling, RopeScaling::kLlama3);
  EXPECT_TRUE(m->tied_output());
  ASSERT_NE(m->rope_freq_factors(), nullptr);
  // Highest frequencies untouched, lowest slowed by the full factor 32.
  EXPECT_FLOAT_EQ(m->rope_freq_factors()[0], 1.0f);
  EXPECT_FLOAT_EQ(m->rope_freq_factors()[31], 32.0f);
  ThreadPool pool(2);
  auto fast = testing::PrefillAll(*m, pool, {1, 2, 3, 4, 5, 6, 7, 8});
  DecoderReference ref(*m, 16);
  for (size_t i = 0; i < fast.size(); ++i) {
    EXPECT_LT(testing::NormalisedMaxErr(
                  fast[i], ref.Forward(static_cast<int32_t>(i + 1), static_cast<int32_t>(i))),
              1e-4);
  }
}

TEST(Quantize, RefusesRequantizingAndActivationTypes) {
  const std::string q = testing::SynthTiny(Arch::kLlama, GgmlType::kQ4_0, "rq");
  QuantizeOptions o;
  o.type = GgmlType::kQ8_0;
  EXPECT_EQ(QuantizeModel(q, testing::TempPath("rq2.gguf"), o).code(),
            absl::StatusCode::kInvalidArgument);
  o.type = GgmlType::kQ8_K;
  EXPECT_EQ(QuantizeModel(q, testing::TempPath("rq3.gguf"), o).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Quantize, ChooseTensorTypeFollowsLlamaCpp) {
  EXPECT_EQ(ChooseTensorType("blk.0.attn_norm.weight", 1, 256, GgmlType::kQ4_0, false, false),
            GgmlType::kF32);
  EXPECT_EQ(ChooseTensorType("output.weight", 2, 256, GgmlType::kQ4_0, false, false),
            GgmlType::kQ6_K);
  EXPECT_EQ(ChooseTensorType("token_embd.weight", 2, 256, GgmlType::kQ4_0, true, false),
            GgmlType::kQ6_K);
  EXPECT_EQ(ChooseTensorType("token_embd.weight", 2, 256, GgmlType::kQ4_0, false, false),
            GgmlType::kQ4_0);
  EXPECT_EQ(ChooseTensorType("output.weight", 2, 256, GgmlType::kQ8_0, false, false),
            GgmlType::kQ8_0);
  // qwen2-0.5b's 896-wide rows are not whole 256-blocks.
  EXPECT_EQ(ChooseTensorType("blk.0.attn_q.weight", 2, 896, GgmlType::kQ4_K, false, false),
            GgmlType::kQ5_0);
  EXPECT_EQ(ChooseTensorType("blk.0.attn_q.weight", 2, 40, GgmlType::kQ4_0, false, false),
            GgmlType::kF16);
}

// llama-quant.cpp's choices for the ternary file types: an untied token_embd
// is Q4_K, rows not a multiple of 256 fall back to Q4_0 (then F16).
TEST(Quantize, TernaryTypesFollowLlamaCpp) {
  for (GgmlType tq : {GgmlType::kTQ1_0, GgmlType::kTQ2_0}) {
    EXPECT_EQ(ChooseTensorType("blk.0.ffn_down.weight", 2, 6912, tq, false, false), tq);
    EXPECT_EQ(ChooseTensorType("token_embd.weight", 2, 2560, tq, false, false), GgmlType::kQ4_K);
    EXPECT_EQ(ChooseTensorType("token_embd.weight", 2, 2560, tq, true, false), GgmlType::kQ6_K);
    EXPECT_EQ(ChooseTensorType("token_embd.weight", 2, 2560, tq, false, true), tq);
    EXPECT_EQ(ChooseTensorType("blk.0.attn_q.weight", 2, 896, tq, false, false), GgmlType::kQ4_0);
    EXPECT_EQ(ChooseTensorType("blk.0.attn_q.weight", 2, 40, tq, false, false), GgmlType::kF16);
  }
  EXPECT_EQ(FileTypeFor(GgmlType::kTQ1_0), 36u);  // LLAMA_FTYPE_MOSTLY_TQ1_0
  EXPECT_EQ(FileTypeFor(GgmlType::kTQ2_0), 37u);
}

}  // namespace
}  // namespace llmesh::engine
