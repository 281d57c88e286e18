// `llmesh synth` writes every decoder family in a form its loader accepts:
// a tiny shape of each family (the family's own extras: q/k norms, post-norms,
// fused phi3 projections, sliding windows, scalars), its vocabulary padded
// past the donor's 512 tokens, loads, tokenizes, and runs the fast path as
// the scalar reference does.
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/decoder_reference.h"
#include "llmesh/tokenizer/tokenizer.h"
#include "model_test_util.h"

namespace llmesh::engine {
namespace {

using testing::LoadOrDie;
using testing::MaxAbsDiff;

class SynthFamily : public ::testing::TestWithParam<Arch> {};

TEST_P(SynthFamily, WritesALoadableModelTheFastPathRunsAsTheReference) {
  const Arch arch = GetParam();
  SynthShape sh = testing::TinyShape(arch);
  sh.head_dim = 96;  // Q wider than n_embd, as Qwen3 and Gemma have it
  sh.n_vocab = 600;
  sh.n_swa = 4;
  sh.swa_pattern = 3;
  sh.attn_softcap = 2.0f;
  sh.final_softcap = 3.0f;
  if (arch == Arch::kGranite) {
    sh.embedding_scale = 12.0f, sh.residual_scale = 0.22f, sh.attention_scale = 0.05f, sh.logit_scale = 8.0f;
  }
  if (arch == Arch::kPhi3) sh.longrope_orig_ctx = 64;
  auto vocab = gguf::GgufFile::Open(testing::StoriesPath());
  ASSERT_TRUE(vocab.ok());
  SynthOptions o;
  o.shape = sh;
  o.type = gguf::GgmlType::kF16;
  o.vocab = vocab->get();
  o.n_threads = 2;
  const std::string path = testing::TempPath(std::string(ArchName(arch)) + "_synth.gguf");
  ASSERT_TRUE(SynthesizeModel(o, path).ok());

  auto m = LoadOrDie(path);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->params().arch, arch);
  EXPECT_EQ(m->params().n_vocab, 600);
  EXPECT_EQ(m->params().n_embd_head_k, 96);
  if (arch == Arch::kPhi3) {  // rope.scaling.type = longrope, factors from the tensors
    EXPECT_NE(m->LayerRope(0, 64).freq_factors, nullptr);
    EXPECT_NE(m->LayerRope(0, 64).freq_factors, m->LayerRope(0, 65).freq_factors);
  }
  auto tok = tokenizer::Tokenizer::FromGguf(m->file());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->n_vocab(), 600);
  EXPECT_EQ((*tok)->TokenText(599), "<|extra_599|>");

  const std::vector<TokenId> tokens = {1, 45, 300, 599, 12, 77, 500, 3, 9, 250, 121, 64};
  ThreadPool pool(2);
  const auto fast = testing::PrefillAll(*m, pool, tokens);
  DecoderReference ref(*m, 64);
  for (size_t p = 0; p < tokens.size(); ++p) {
    const std::vector<float>& want = ref.Forward(tokens[p], static_cast<int32_t>(p));
    EXPECT_LT(MaxAbsDiff(want, fast[p]), 2e-3f) << ArchName(arch) << " pos " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, SynthFamily,
                         ::testing::Values(Arch::kQwen3, Arch::kGemma2, Arch::kGemma3, Arch::kPhi3, Arch::kMistral3,
                                           Arch::kOlmo2, Arch::kGranite, Arch::kSmolLM3, Arch::kExaone4,
                                           Arch::kBitnet),
                         [](const auto& info) { return std::string(ArchName(info.param)); });

// bitnet's matrices come out ternary ({-1, 0, 1} times one F16 scale), so
// TQ1_0 and TQ2_0 hold them exactly: the two files give the same logits
// (up to float summation order),
// and the bitnet-2b shape is BitNet b1.58 2B4T's.
TEST(SynthBitnet, TernaryMatricesInBothTernaryTypes) {
  SynthShape sh = testing::TinyShape(Arch::kBitnet);
  sh.n_vocab = 600;
  auto vocab = gguf::GgufFile::Open(testing::StoriesPath());
  ASSERT_TRUE(vocab.ok());
  const std::vector<TokenId> tokens = {1, 45, 300, 599, 12, 77};
  ThreadPool pool(2);
  std::vector<std::vector<std::vector<float>>> logits;
  for (const gguf::GgmlType type : {gguf::GgmlType::kTQ1_0, gguf::GgmlType::kTQ2_0}) {
    SynthOptions o;
    o.shape = sh;
    o.type = type;
    o.vocab = vocab->get();
    o.n_threads = 2;
    const std::string path = testing::TempPath("bitnet_synth_" + std::string(gguf::ggml_type_name(type)) + ".gguf");
    ASSERT_TRUE(SynthesizeModel(o, path).ok());
    auto m = LoadOrDie(path);
    ASSERT_NE(m, nullptr);
    const LayerWeights& L = m->layers()[1];
    ASSERT_EQ(L.w_up.type, type);
    ASSERT_NE(L.ffn_sub_norm, nullptr);
    std::vector<float> row(L.w_up.n_in);
    DequantizeWeightRow(L.w_up, 7, row.data());
    int nonzero = 0;
    for (float v : row) {
      ASSERT_TRUE(v == 0.0f || std::fabs(v) == 0.015960693359375f) << v;
      nonzero += v != 0.0f;
    }
    EXPECT_GT(nonzero, 100);  // |w| > scale / 2 = 0.4 sigma: about 70% of 256
    logits.push_back(testing::PrefillAll(*m, pool, tokens));
  }
  // The same integer block sums, spread over different lanes (float order).
  for (size_t p = 0; p < tokens.size(); ++p) EXPECT_LT(testing::MaxAbsDiff(logits[0][p], logits[1][p]), 1e-5f) << p;

  auto real = SynthShapeByName("bitnet-2b");
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(real->arch, Arch::kBitnet);
  EXPECT_EQ(real->n_embd, 2560);
  EXPECT_EQ(real->n_layer, 30);
  EXPECT_EQ(real->n_ff, 6912);
  EXPECT_EQ(real->n_head, 20);
  EXPECT_EQ(real->n_head_kv, 5);
  EXPECT_EQ(real->n_vocab, 128256);
}

}  // namespace
}  // namespace llmesh::engine
