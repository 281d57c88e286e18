// Every SIMD level x every weight type against the scalar path, in the style
// of llama.cpp's test-backend-ops: normalised mean squared error.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/matmul.h"
#include "llmesh/engine/quants.h"
#include "llmesh/engine/weight_pack.h"

namespace llmesh::engine {
namespace {

using gguf::GgmlType;

double Nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, sig = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    sig += double(want[i]) * want[i];
  }
  return err / sig;
}

struct Weights {
  std::vector<uint8_t> data;
  WeightView view;
};

Weights MakeWeights(GgmlType type, int64_t n_in, int64_t n_out, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> row(n_in);
  Weights w;
  const size_t row_bytes = *gguf::ggml_row_size(type, n_in);
  w.data.resize(row_bytes * n_out);
  for (int64_t r = 0; r < n_out; ++r) {
    for (float& v : row) v = dist(rng);
    EXPECT_TRUE(QuantizeRow(type, row.data(), w.data.data() + r * row_bytes, n_in).ok());
  }
  w.view = WeightView{type, n_in, n_out, w.data.data(), row_bytes};
  return w;
}

std::vector<float> RunMatMul(ThreadPool& pool, const WeightView& w, const std::vector<float>& x,
                             int64_t n_tok, SimdLevel level) {
  SetSimdLevel(level);
  std::vector<float> y(n_tok * w.n_out, NAN);
  MatMul(pool, w, x.data(), n_tok, y.data());
  SetSimdLevel(DetectedSimdLevel());
  return y;
}

const GgmlType kTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_0,
                           GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0,
                           GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K,
                           GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS, GgmlType::kTQ1_0,
                           GgmlType::kTQ2_0};

// Types of 256-element blocks.
bool IsK(GgmlType t) { return gguf::ggml_type_traits(t)->block_size == 256; }

class MatMulLevelTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MatMulLevelTest, EveryLevelMatchesScalar) {
  const GgmlType type = GetParam();
  // 608 = 19 blocks of 32 exercises kernels' block tails.
  const std::vector<int64_t> n_ins = IsK(type) ? std::vector<int64_t>{512, 768}
                                               : std::vector<int64_t>{512, 608, 2048};
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (int64_t n_in : n_ins) {
    const int64_t n_out = 37;  // odd: partial row tiles
    Weights w = MakeWeights(type, n_in, n_out, 7 + static_cast<uint32_t>(n_in));
    for (int64_t n_tok : {1, 3, 4, 7, 32, 70}) {
      std::mt19937 rng(static_cast<uint32_t>(n_tok));
      std::normal_distribution<float> dist;
      std::vector<float> x(n_tok * n_in);
      for (float& v : x) v = dist(rng);
      const std::vector<float> ref = RunMatMul(pool1, w.view, x, n_tok, SimdLevel::kScalar);

      // The scalar path itself vs float math on dequantized weights: only the
      // activation quantization (8-bit, or bf16) separates them.
      std::vector<float> wf(n_in), exact(n_tok * n_out);
      for (int64_t o = 0; o < n_out; ++o) {
        ASSERT_TRUE(DequantizeRow(type, w.data.data() + o * w.view.row_bytes, wf.data(), n_in).ok());
        for (int64_t t = 0; t < n_tok; ++t) {
          double s = 0;
          for (int64_t i = 0; i < n_in; ++i) s += double(wf[i]) * x[t * n_in + i];
          exact[t * n_out + o] = static_cast<float>(s);
        }
      }
      EXPECT_LT(Nmse(ref, exact), 5e-4) << gguf::ggml_type_name(type);

      for (int level = 1; level <= static_cast<int>(DetectedSimdLevel()); ++level) {
        for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
          const auto got = RunMatMul(*pool, w.view, x, n_tok, static_cast<SimdLevel>(level));
          // Integer dot products are exact; only float summation order and
          // the per-block scale products differ from the scalar path.
          EXPECT_LT(Nmse(got, ref), 1e-9)
              << gguf::ggml_type_name(type) << " level " << SimdLevelName(static_cast<SimdLevel>(level))
              << " n_in " << n_in << " n_tok " << n_tok << " threads " << pool->n_threads();
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatMulLevelTest, ::testing::ValuesIn(kTypes),
                         [](const auto& info) { return std::string(gguf::ggml_type_name(info.param)); });

// Packed (16-row interleaved) weights give what the GGUF rows give, for
// every activation-row count the batched kernels split into (8, 4, 2, 1
// and their sums) and every thread count.
TEST(MatMulPackedTest, MatchesTheRowMajorPathForEveryTokenCount) {
  if (DetectedSimdLevel() < SimdLevel::kAvx512Vnni) GTEST_SKIP() << "no AVX-512 VNNI: packing is off";
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0,
                        GgmlType::kIQ4_NL, GgmlType::kIQ4_XS, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const std::vector<int64_t> n_ins = IsK(type) ? std::vector<int64_t>{256, 768, 2048} : std::vector<int64_t>{32, 608, 2048};
    for (int64_t n_in : n_ins) {
      const int64_t n_out = 80;  // 5 groups: an odd count per thread
      Weights w = MakeWeights(type, n_in, n_out, 11 + static_cast<uint32_t>(n_in));
      WeightView packed = w.view;
      PackedWeights store;
      ASSERT_TRUE(WantsPacking(packed));
      store.Pack(&packed);
      ASSERT_NE(packed.packed, nullptr);
      // The GGUF bytes, the K-quants' and IQ4_XS's scales spread to a byte
      // each (at most 3% more), and alignment.
      EXPECT_GE(store.bytes(), n_out * w.view.row_bytes);
      EXPECT_LE(store.bytes(), n_out * w.view.row_bytes * 103 / 100 + 63 * (n_out / 16));
      for (int64_t n_tok : {1, 2, 3, 7, 8, 13, 16, 64, 70}) {
        std::mt19937 rng(static_cast<uint32_t>(n_tok));
        std::normal_distribution<float> dist;
        std::vector<float> x(n_tok * n_in);
        for (float& v : x) v = dist(rng);
        const std::vector<float> ref = RunMatMul(pool1, w.view, x, n_tok, SimdLevel::kScalar);
        for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
          const auto got = RunMatMul(*pool, packed, x, n_tok, SimdLevel::kAvx512Vnni);
          EXPECT_LT(Nmse(got, ref), 1e-9) << gguf::ggml_type_name(type) << " n_in " << n_in << " n_tok " << n_tok
                                          << " threads " << pool->n_threads();
        }
        // Below VNNI the same view falls back to its GGUF rows.
        const auto avx2 = RunMatMul(pool2, packed, x, n_tok, SimdLevel::kAvx2);
        EXPECT_LT(Nmse(avx2, ref), 1e-9);
      }
    }
  }
}

// Q, K and V (or gate and up) in one call: the row split spans all three,
// so a thread's share can start inside one matrix and end in the next.
TEST(MatMulPackedTest, ManyMatricesInOneCallEqualOneAtATime) {
  ThreadPool pool2(2), pool3(3);
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K,
                        GgmlType::kIQ4_XS}) {
    const int64_t n_in = IsK(type) ? 512 : 608;
    Weights a = MakeWeights(type, n_in, 96, 1), b = MakeWeights(type, n_in, 32, 2), c = MakeWeights(type, n_in, 48, 3);
    PackedWeights store;
    for (Weights* w : {&a, &b, &c}) store.Pack(&w->view);
    const WeightView* ws[3] = {&a.view, &b.view, &c.view};
    for (int64_t n_tok : {1, 5, 16}) {
      std::mt19937 rng(static_cast<uint32_t>(n_tok));
      std::normal_distribution<float> dist;
      std::vector<float> x(n_tok * n_in);
      for (float& v : x) v = dist(rng);
      for (ThreadPool* pool : {&pool2, &pool3}) {
        std::vector<std::vector<float>> many(3), one(3);
        float* ys[3];
        for (int i = 0; i < 3; ++i) {
          many[i].assign(n_tok * ws[i]->n_out, NAN);
          ys[i] = many[i].data();
          one[i] = RunMatMul(*pool, *ws[i], x, n_tok, DetectedSimdLevel());
        }
        MatMulMany(*pool, ws, x.data(), n_tok, ys);
        for (int i = 0; i < 3; ++i) {
          EXPECT_EQ(many[i], one[i]) << gguf::ggml_type_name(type) << " matrix " << i << " n_tok " << n_tok;
        }
      }
    }
  }
}

TEST(MatMulPackedTest, OnlyWholeGroupsOfSupportedTypesArePacked) {
  Weights q4 = MakeWeights(GgmlType::kQ4_0, 64, 24, 3);  // 24 rows: not a multiple of 16
  EXPECT_FALSE(WantsPacking(q4.view));
  Weights q3k = MakeWeights(GgmlType::kQ3_K, 256, 32, 3);  // no packed layout
  EXPECT_FALSE(WantsPacking(q3k.view));
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    Weights k = MakeWeights(type, 256, 32, 3);
    EXPECT_EQ(WantsPacking(k.view), DetectedSimdLevel() >= SimdLevel::kAvx512Vnni);
  }
  PackedWeights store;
  store.Pack(&q4.view);
  EXPECT_EQ(q4.view.packed, nullptr);
  EXPECT_EQ(store.bytes(), 0u);
}

TEST(MatMulTest, SimdLevelIsClampedToDetected) {
  SetSimdLevel(SimdLevel::kAvx512Vnni);
  EXPECT_LE(ActiveSimdLevel(), DetectedSimdLevel());
  SetSimdLevel(DetectedSimdLevel());
  EXPECT_STRNE(SimdLevelName(DetectedSimdLevel()), "unknown");
}

}  // namespace
}  // namespace llmesh::engine
