// The batched fast path against the scalar reference, and against itself
// under different batchings: prefill vs decode, several sequences in one
// batch vs each alone, small KV spans, small micro-batches.
#include "gtest/gtest.h"
#include "llmesh/engine/embed.h"
#include "llmesh/engine/decoder_reference.h"
#include "llmesh/engine/matmul.h"
#include "model_test_util.h"

namespace llmesh::engine {
namespace {

using testing::LoadOrDie;
using testing::NormalisedMaxErr;
using testing::StoriesPath;

// F32 weights: the fast path multiplies in float like the reference, only
// the summation order differs. Normalised max error (max |diff| / max |ref|).
constexpr double kF32RefTol = 1e-4;
// Same kernels, different batch shapes: only summation order and thread
// splits differ.
constexpr float kBatchingTol = 1e-4f;

const std::vector<TokenId> kTokens = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                      315, 421, 395, 317, 426, 338, 401, 396, 267, 337};

void ExpectFastMatchesReference(const Model& m, const std::vector<TokenId>& tokens, double tol) {
  ThreadPool pool(2);
  auto fast = testing::PrefillAll(m, pool, tokens);
  ASSERT_EQ(fast.size(), tokens.size());
  DecoderReference ref(m, 256);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& want = ref.Forward(tokens[i], static_cast<int32_t>(i));
    EXPECT_LT(NormalisedMaxErr(fast[i], want), tol) << "position " << i;
    EXPECT_EQ(testing::ArgMaxOf(fast[i]), testing::ArgMaxOf(want)) << "position " << i;
  }
}

TEST(Forward, StoriesMatchesReference) {
  auto m = LoadOrDie(StoriesPath());
  ASSERT_NE(m, nullptr);
  ExpectFastMatchesReference(*m, kTokens, kF32RefTol);
}

TEST(Forward, SynthLlamaMatchesReference) {
  auto m = LoadOrDie(testing::SynthTiny(Arch::kLlama, gguf::GgmlType::kF32, "ref_llama"));
  ASSERT_NE(m, nullptr);
  ExpectFastMatchesReference(*m, kTokens, kF32RefTol);
}

// qwen2: QKV biases, NeoX RoPE pairing, tied output.
TEST(Forward, SynthQwen2MatchesReference) {
  auto m = LoadOrDie(testing::SynthTiny(Arch::kQwen2, gguf::GgmlType::kF32, "ref_qwen2"));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->params().has_qkv_bias);
  EXPECT_EQ(m->params().rope_type, RopeType::kNeox);
  EXPECT_TRUE(m->tied_output());
  ExpectFastMatchesReference(*m, kTokens, kF32RefTol);
}

TEST(Forward, PrefillEqualsTokenByTokenDecode) {
  auto m = LoadOrDie(StoriesPath());
  ASSERT_NE(m, nullptr);
  ThreadPool pool(2);
  ForwardContext ctx(*m, pool);
  auto kv_a = MakeKvCache(*m, 128);
  auto kv_b = MakeKvCache(*m, 128);
  Batch b;
  b.AddSequence(kTokens, 0, 0);
  ForwardOutput prefill, step;
  ASSERT_TRUE(ctx.Decode(b, *kv_a, &prefill).ok());
  for (size_t i = 0; i < kTokens.size(); ++i) {
    b.Clear();
    b.Add(kTokens[i], static_cast<int32_t>(i), 0, true);
    ASSERT_TRUE(ctx.Decode(b, *kv_b, &step).ok());
  }
  EXPECT_LT(testing::MaxAbsDiff(prefill.Row(0), step.Row(0)), kBatchingTol);
}

TEST(Forward, BatchedSequencesEqualEachAlone) {
  auto m = LoadOrDie(StoriesPath());
  ASSERT_NE(m, nullptr);
  ThreadPool pool(2);
  ForwardContext ctx(*m, pool);
  const std::vector<std::vector<TokenId>> prompts = {
      {1, 403, 407, 261, 378}, {1, 376, 298, 315, 421, 395, 317, 426}, {1, 286}};

  // Each alone: prefill, then one decode step with token 261.
  std::vector<std::vector<float>> alone_prefill, alone_step;
  for (const auto& p : prompts) {
    auto kv = MakeKvCache(*m, 64);
    Batch b;
    b.AddSequence(p, 0, 0);
    ForwardOutput out;
    ASSERT_TRUE(ctx.Decode(b, *kv, &out).ok());
    alone_prefill.emplace_back(out.Row(0).begin(), out.Row(0).end());
    b.Clear();
    b.Add(261, static_cast<int32_t>(p.size()), 0, true);
    ASSERT_TRUE(ctx.Decode(b, *kv, &out).ok());
    alone_step.emplace_back(out.Row(0).begin(), out.Row(0).end());
  }

  // Together, tokens interleaved across sequences, ids not starting at 0.
  auto kv = MakeKvCache(*m, 64);
  Batch b;
  for (size_t i = 0; i < 8; ++i) {
    for (size_t s = 0; s < prompts.size(); ++s) {
      if (i < prompts[s].size()) {
        b.Add(prompts[s][i], static_cast<int32_t>(i), static_cast<SeqId>(10 + s),
              i + 1 == prompts[s].size());
      }
    }
  }
  ForwardOutput out;
  ASSERT_TRUE(ctx.Decode(b, *kv, &out).ok());
  ASSERT_EQ(out.n_rows(), 3);
  for (int32_t r = 0; r < 3; ++r) {
    const SeqId s = b.seq_id[out.batch_index[r]] - 10;
    EXPECT_LT(testing::MaxAbsDiff(out.Row(r), alone_prefill[s]), kBatchingTol) << "seq " << s;
  }
  b.Clear();
  for (size_t s = 0; s < prompts.size(); ++s) {
    b.Add(261, static_cast<int32_t>(prompts[s].size()), static_cast<SeqId>(10 + s), true);
  }
  ASSERT_TRUE(ctx.Decode(b, *kv, &out).ok());
  for (int32_t s = 0; s < 3; ++s) {
    EXPECT_LT(testing::MaxAbsDiff(out.Row(s), alone_step[s]), kBatchingTol) << "seq " << s;
  }
}

// Q4_0 / Q8_0 / Q6_K matrices are repacked at load on AVX-512 VNNI CPUs and
// the batched kernels read the packed copy: the logits match the GGUF-row
// kernels (forced by a lower SIMD level), and every token of a 13-sequence
// batch (runs of 8, 4 and 1 in the packed kernel) matches its decode alone.
TEST(Forward, PackedWeightsMatchRowMajorKernelsInEveryBatchShape) {
  if (DetectedSimdLevel() < SimdLevel::kAvx512Vnni) GTEST_SKIP() << "no AVX-512 VNNI: nothing is packed";
  for (gguf::GgmlType type : {gguf::GgmlType::kQ4_0, gguf::GgmlType::kQ8_0, gguf::GgmlType::kQ6_K}) {
    auto m = LoadOrDie(testing::SynthTiny(Arch::kLlama, type, "packed_" + std::string(gguf::ggml_type_name(type))));
    ASSERT_NE(m, nullptr);
    ASSERT_NE(m->layers()[0].wq.packed, nullptr);
    ASSERT_NE(m->layers()[1].w_down.packed, nullptr);
    ThreadPool pool(2);
    const std::vector<TokenId> prompt(kTokens.begin(), kTokens.begin() + 12);
    const auto packed = testing::PrefillAll(*m, pool, prompt);
    SetSimdLevel(SimdLevel::kAvx2);
    const auto rows = testing::PrefillAll(*m, pool, prompt);
    SetSimdLevel(DetectedSimdLevel());
    // Each matmul agrees to float rounding (kernels_matmul_test), but a
    // rounding-order difference upstream can move an activation across an
    // int8 rounding boundary downstream: one quantum, ~1e-3 of the logits.
    for (size_t i = 0; i < prompt.size(); ++i) {
      EXPECT_LT(NormalisedMaxErr(packed[i], rows[i]), 1e-2) << gguf::ggml_type_name(type) << " position " << i;
    }

    ForwardContext ctx(*m, pool);
    constexpr int kSeqs = 13;
    auto kv = MakeKvCache(*m, 64);
    Batch b;
    for (int s = 0; s < kSeqs; ++s) b.AddSequence({1, kTokens[s], kTokens[s + 1]}, 0, s);
    ForwardOutput together;
    ASSERT_TRUE(ctx.Decode(b, *kv, &together).ok());
    b.Clear();
    for (int s = 0; s < kSeqs; ++s) b.Add(kTokens[s + 2], 3, s, true);
    ASSERT_TRUE(ctx.Decode(b, *kv, &together).ok());
    for (int s = 0; s < kSeqs; ++s) {
      auto kv1 = MakeKvCache(*m, 64);
      Batch one;
      one.AddSequence({1, kTokens[s], kTokens[s + 1], kTokens[s + 2]}, 0, 0);
      ForwardOutput alone;
      ASSERT_TRUE(ctx.Decode(one, *kv1, &alone).ok());
      EXPECT_LT(testing::MaxAbsDiff(together.Row(s), alone.Row(0)), kBatchingTol)
          << gguf::ggml_type_name(type) << " seq " << s;
    }
  }
}

// Attention reads K/V a span at a time; tiny spans and micro-batches must
// not change anything.
TEST(Forward, SmallSpansAndMicroBatchesAgree) {
  auto m = LoadOrDie(StoriesPath());
  ASSERT_NE(m, nullptr);
  ThreadPool pool(2);
  ForwardContext big(*m, pool);
  ForwardContext small(*m, pool, /*n_ubatch=*/3);
  auto kv_a = MakeKvCache(*m, 64);
  const ModelParams& hp = m->params();
  ContiguousKvCache kv_b(hp.n_layer, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(), 64, /*span_size=*/4);
  Batch b;
  b.AddSequence(kTokens, 0, 0, /*all_outputs=*/true);
  ForwardOutput a, c;
  ASSERT_TRUE(big.Decode(b, *kv_a, &a).ok());
  ASSERT_TRUE(small.Decode(b, kv_b, &c).ok());
  ASSERT_EQ(a.n_rows(), c.n_rows());
  for (int32_t i = 0; i < a.n_rows(); ++i) {
    EXPECT_LT(testing::MaxAbsDiff(a.Row(i), c.Row(i)), kBatchingTol) << "row " << i;
  }
}

TEST(Forward, RejectsBadBatches) {
  auto m = LoadOrDie(StoriesPath());
  ASSERT_NE(m, nullptr);
  ThreadPool pool(1);
  ForwardContext ctx(*m, pool);
  auto kv = MakeKvCache(*m, 16);
  ForwardOutput out;
  Batch b;
  b.Add(-1, 0, 0, true);
  EXPECT_EQ(ctx.Decode(b, *kv, &out).code(), absl::StatusCode::kInvalidArgument);
  b.Clear();
  b.Add(512, 0, 0, true);
  EXPECT_EQ(ctx.Decode(b, *kv, &out).code(), absl::StatusCode::kInvalidArgument);
  b.Clear();
  b.Add(1, 3, 0, true);  // hole: sequence 0 is empty
  EXPECT_EQ(ctx.Decode(b, *kv, &out).code(), absl::StatusCode::kInvalidArgument);
  b.Clear();
  b.Add(1, 0, 0, false);
  b.Add(1, 2, 0, true);  // positions not consecutive
  EXPECT_EQ(ctx.Decode(b, *kv, &out).code(), absl::StatusCode::kInvalidArgument);
  b.Clear();
  b.Add(1, 16, 0, true);  // beyond the cache's context
  EXPECT_EQ(ctx.Decode(b, *kv, &out).code(), absl::StatusCode::kInvalidArgument);
  b.Clear();
  EXPECT_EQ(ctx.Decode(b, *kv, &out).code(), absl::StatusCode::kInvalidArgument);
  // And a valid batch still works afterwards.
  b.Add(1, 0, 0, true);
  EXPECT_TRUE(ctx.Decode(b, *kv, &out).ok());
}

TEST(Forward, RewindOverwritesTheTail) {
  auto m = LoadOrDie(StoriesPath());
  ASSERT_NE(m, nullptr);
  ThreadPool pool(1);
  ForwardContext ctx(*m, pool);
  auto kv = MakeKvCache(*m, 64);
  Batch b;
  b.AddSequence({1, 403, 407, 261}, 0, 0);
  ForwardOutput first, again;
  ASSERT_TRUE(ctx.Decode(b, *kv, &first).ok());
  b.Clear();
  b.AddSequence({999 % 512, 5}, 2, 0);  // rewrite positions 2..3
  ASSERT_TRUE(ctx.Decode(b, *kv, &again).ok());
  EXPECT_EQ(kv->SeqLength(0), 4);
  b.Clear();
  b.AddSequence({407, 261}, 2, 0);  // and back: must equal the first run
  ASSERT_TRUE(ctx.Decode(b, *kv, &again).ok());
  EXPECT_LT(testing::MaxAbsDiff(first.Row(0), again.Row(0)), kBatchingTol);
}

TEST(Embed, UnitNormAndPoolingModes) {
  auto m = LoadOrDie(StoriesPath());
  ASSERT_NE(m, nullptr);
  ThreadPool pool(2);
  ForwardContext ctx(*m, pool);
  auto kv = MakeKvCache(*m, 64);
  auto mean = Embed(ctx, *kv, kTokens, Pooling::kMean);
  auto last = Embed(ctx, *kv, kTokens, Pooling::kLast);
  ASSERT_TRUE(mean.ok() && last.ok());
  ASSERT_EQ(mean->size(), 64u);
  double nm = 0, nl = 0;
  for (float v : *mean) nm += v * v;
  for (float v : *last) nl += v * v;
  EXPECT_NEAR(nm, 1.0, 1e-5);
  EXPECT_NEAR(nl, 1.0, 1e-5);
  // Last pooling is the reference's final hidden state, normalised.
  DecoderReference ref(*m, 64);
  for (size_t i = 0; i < kTokens.size(); ++i) ref.Forward(kTokens[i], static_cast<int32_t>(i));
  std::vector<float> h = ref.hidden();
  double n = 0;
  for (float v : h) n += v * v;
  for (float& v : h) v = static_cast<float>(v / std::sqrt(n));
  EXPECT_LT(testing::MaxAbsDiff(*last, h), 1e-4f);
  EXPECT_EQ(kv->SeqLength(0), 0);  // the embedding sequence is released
  EXPECT_FALSE(Embed(ctx, *kv, {}, Pooling::kMean).ok());
}

}  // namespace
}  // namespace llmesh::engine
