// BertForward against the independent double-precision reference
// (bert_test_util.h) on synthesized BERT models with bge's WordPiece
// vocabulary: hidden states and pooled embeddings, every pooling, weights in
// F32/F16/quantized types, batched == one at a time, input validation.
#include <algorithm>
#include <cstdio>

#include "bert_test_util.h"
#include "gtest/gtest.h"
#include "llmesh/engine/bert_forward.h"
#include "llmesh/engine/bert_model.h"

namespace llmesh::engine {
namespace {

using testing::BertReference;
using testing::MaxAbsDiff;
using testing::SynthBert;
using testing::Tokenize;

// F32 weights: BertForward multiplies in float, the reference in double;
// only rounding differs. Max |diff| over the unit-length embedding and over
// the hidden states (whose entries are O(1) after each LayerNorm). Measured
// (2 threads, AVX-512): 5e-8 and 1e-6.
constexpr double kF32Tol = 1e-6;
constexpr double kF32HiddenTol = 2e-5;
// Quantized weights: the reference reads the same quantized weights but
// multiplies float activations, while the kernels quantize activations to
// Q8_0 / Q8_K, so the embedding moves a little in direction. Measured
// 1 - cosine: ~1e-15 (F16, float activations), 1e-7..3e-7 (Q8_0, Q4_0,
// Q4_K, Q6_K).
constexpr double kQuantMaxOneMinusCos = 1e-5;
// Several sequences packed in one pass vs each alone: the same arithmetic
// on each row (equal today), but the matmul tiles by token count, so a
// kernel that sums in another order for wider tiles stays within this.
constexpr double kBatchingTol = 1e-6;

const std::vector<std::string> kTexts = {
    "The quick brown fox jumps over the lazy dog.",
    "Hello world",
    "Retrieval-augmented generation grounds answers in documents; embeddings find them.",
    "a",
    "Don't panic! Numbers like 3.14159 and 2026 tokenize into word pieces."};

std::unique_ptr<BertModel> LoadBert(const std::string& path) {
  auto m = BertModel::Load(path);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

TEST(BertForward, HiddenStatesMatchReferenceF32) {
  auto m = LoadBert(SynthBert(gguf::GgmlType::kF32, "hidden_f32"));
  ASSERT_NE(m, nullptr);
  ThreadPool pool(2);
  BertForward fwd(*m, pool);
  BertReference ref(m->file());
  auto seqs = Tokenize(m->file(), kTexts);
  std::vector<std::vector<float>> hidden;
  ASSERT_TRUE(fwd.Encode(seqs, &hidden).ok());
  ASSERT_EQ(hidden.size(), seqs.size());
  const int64_t n_embd = m->params().n_embd;
  double worst = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    auto want = ref.Hidden(seqs[s]);
    ASSERT_EQ(hidden[s].size(), seqs[s].size() * n_embd);
    for (size_t i = 0; i < seqs[s].size(); ++i) {
      std::vector<float> row(hidden[s].begin() + i * n_embd, hidden[s].begin() + (i + 1) * n_embd);
      const double err = MaxAbsDiff(row, want[i]);
      EXPECT_LT(err, kF32HiddenTol) << "text " << s << " token " << i;
      worst = std::max(worst, err);
    }
  }
  std::printf("hidden states: max |diff| %.3g (tolerance %.3g)\n", worst, kF32HiddenTol);
}

TEST(BertForward, MeanAndClsEmbeddingsMatchReferenceF32) {
  auto m = LoadBert(SynthBert(gguf::GgmlType::kF32, "embed_f32"));
  ASSERT_NE(m, nullptr);
  ThreadPool pool(2);
  BertForward fwd(*m, pool);
  BertReference ref(m->file());
  auto seqs = Tokenize(m->file(), kTexts);
  auto mean = fwd.Embed(seqs, Pooling::kMean);
  auto cls = fwd.Embed(seqs, Pooling::kCls);
  ASSERT_TRUE(mean.ok()) << mean.status();
  ASSERT_TRUE(cls.ok()) << cls.status();
  double worst = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    auto want_mean = ref.Embed(seqs[s], /*cls=*/false);
    auto want_cls = ref.Embed(seqs[s], /*cls=*/true);
    EXPECT_LT(MaxAbsDiff((*mean)[s], want_mean), kF32Tol) << "text " << s;
    EXPECT_LT(MaxAbsDiff((*cls)[s], want_cls), kF32Tol) << "text " << s;
    worst = std::max({worst, MaxAbsDiff((*mean)[s], want_mean), MaxAbsDiff((*cls)[s], want_cls)});
    // The two poolings are different vectors (the test could not tell them
    // apart otherwise).
    EXPECT_GT(MaxAbsDiff((*mean)[s], want_cls), 100 * kF32Tol) << "text " << s;
  }
  std::printf("embeddings: max |diff| %.3g (tolerance %.3g)\n", worst, kF32Tol);
}

TEST(BertForward, DefaultPoolingFollowsTheFile) {
  for (Pooling p : {Pooling::kMean, Pooling::kCls}) {
    auto m = LoadBert(SynthBert(gguf::GgmlType::kF32, std::string("default_") + std::string(PoolingName(p)),
                                BertSynthRecipe::kRandom, p));
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->params().pooling, p);
    ThreadPool pool(1);
    BertForward fwd(*m, pool);
    auto seqs = Tokenize(m->file(), {kTexts[0]});
    auto dflt = fwd.Embed(seqs, Pooling::kDefault);
    auto expl = fwd.Embed(seqs, p);
    ASSERT_TRUE(dflt.ok() && expl.ok());
    EXPECT_EQ((*dflt)[0], (*expl)[0]) << PoolingName(p);
  }
}

TEST(BertForward, QuantizedWeightsStayCloseToReference) {
  for (auto type : {gguf::GgmlType::kF16, gguf::GgmlType::kQ8_0, gguf::GgmlType::kQ4_0,
                    gguf::GgmlType::kQ4_K, gguf::GgmlType::kQ6_K}) {
    const std::string name(gguf::ggml_type_name(type));
    auto m = LoadBert(SynthBert(type, "quant_" + name));
    ASSERT_NE(m, nullptr) << name;
    ThreadPool pool(2);
    BertForward fwd(*m, pool);
    BertReference ref(m->file());  // same quantized weights, float activations
    auto seqs = Tokenize(m->file(), {kTexts[0], kTexts[2]});
    auto got = fwd.Embed(seqs, Pooling::kMean);
    ASSERT_TRUE(got.ok()) << got.status();
    for (size_t s = 0; s < seqs.size(); ++s) {
      const double cos = testing::Cosine((*got)[s], ref.Embed(seqs[s], false));
      EXPECT_LT(1 - cos, kQuantMaxOneMinusCos) << name << " text " << s;
      std::printf("%s text %zu: 1 - cosine to reference %.3g\n", name.c_str(), s, 1 - cos);
    }
  }
}

TEST(BertForward, BatchEqualsOneAtATime) {
  auto m = LoadBert(SynthBert(gguf::GgmlType::kQ8_0, "batch_q8"));
  ASSERT_NE(m, nullptr);
  ThreadPool pool(2);
  auto seqs = Tokenize(m->file(), kTexts);
  // n_ubatch 24 packs some texts together and runs the longer ones alone.
  for (int32_t n_ubatch : {512, 24}) {
    BertForward together(*m, pool, n_ubatch);
    auto all = together.Embed(seqs, Pooling::kMean);
    ASSERT_TRUE(all.ok()) << all.status();
    ASSERT_EQ(all->size(), seqs.size());
    BertForward alone(*m, pool);
    for (size_t s = 0; s < seqs.size(); ++s) {
      auto one = alone.Embed({seqs[s]}, Pooling::kMean);
      ASSERT_TRUE(one.ok());
      std::vector<double> want((*one)[0].begin(), (*one)[0].end());
      EXPECT_LE(MaxAbsDiff((*all)[s], want), kBatchingTol) << "n_ubatch " << n_ubatch << " text " << s;
    }
  }
}

TEST(BertForward, EmbeddingsAreUnitVectorsAndDependOnOrder) {
  auto m = LoadBert(SynthBert(gguf::GgmlType::kF32, "unit"));
  ASSERT_NE(m, nullptr);
  ThreadPool pool(2);
  BertForward fwd(*m, pool);
  // Learned positions: the same words in another order are another input.
  auto seqs = Tokenize(m->file(), {"dog bites man", "man bites dog"});
  auto e = fwd.Embed(seqs, Pooling::kMean);
  ASSERT_TRUE(e.ok());
  for (const auto& v : *e) {
    double ss = 0;
    for (float x : v) ss += static_cast<double>(x) * x;
    EXPECT_NEAR(std::sqrt(ss), 1.0, 1e-5);
  }
  std::vector<double> other((*e)[1].begin(), (*e)[1].end());
  EXPECT_GT(MaxAbsDiff((*e)[0], other), 1e-4);
}

TEST(BertForward, BadInputsAreRejectedBeforeAnythingRuns) {
  auto m = LoadBert(SynthBert(gguf::GgmlType::kF32, "bad_inputs"));
  ASSERT_NE(m, nullptr);
  ThreadPool pool(1);
  BertForward fwd(*m, pool);
  const int32_t n_vocab = static_cast<int32_t>(m->params().n_vocab);
  auto expect_invalid = [&](std::vector<std::vector<TokenId>> seqs, const std::string& needle) {
    auto r = fwd.Embed(seqs, Pooling::kMean);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  expect_invalid({{101, 102}, {}}, "input 1 is empty");
  expect_invalid({{101, -1, 102}}, "outside the vocabulary");
  expect_invalid({{101, n_vocab, 102}}, "outside the vocabulary");
  expect_invalid({std::vector<TokenId>(m->params().n_ctx_train + 1, 1000)}, "positions");
  // The longest input the positions allow still works.
  auto ok = fwd.Embed({std::vector<TokenId>(m->params().n_ctx_train, 1000)}, Pooling::kCls);
  EXPECT_TRUE(ok.ok()) << ok.status();
}

}  // namespace
}  // namespace llmesh::engine
