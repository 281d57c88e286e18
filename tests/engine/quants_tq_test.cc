// The ternary formats (tq1_0, tq2_0): dequantization of blocks assembled here
// from ggml's format definition, exact round trips of ternary weights,
// rejection of bad rows, and the SIMD dot products on arbitrary bytes.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/matmul.h"
#include "llmesh/engine/quants.h"

namespace llmesh::engine {
namespace {

using gguf::GgmlType;

// The tq1_0 byte of trits t[0..5) (t[0] most significant): the base-3 value
// v as the 8-bit fraction ceil(v * 256 / 3^5).
uint8_t Tq1Byte(const int t[5]) {
  const int v = (((t[0] * 3 + t[1]) * 3 + t[2]) * 3 + t[3]) * 3 + t[4];
  return static_cast<uint8_t>((v * 256 + 242) / 243);
}

// Trits (0, 1, 2) of one 256-element block, element e at e.
std::vector<int> RandomTrits(std::mt19937& rng) {
  std::vector<int> t(kQK_K);
  for (int& v : t) v = static_cast<int>(rng() % 3);
  return t;
}

// ggml-common.h's element order, spelled out independently of quants_tq.cc.
block_tq1_0 MakeTq1(const std::vector<int>& t, float d) {
  block_tq1_0 b{};
  for (int m = 0; m < 32; ++m) {
    const int v[5] = {t[m], t[32 + m], t[64 + m], t[96 + m], t[128 + m]};
    b.qs[m] = Tq1Byte(v);
  }
  for (int m = 0; m < 16; ++m) {
    const int v[5] = {t[160 + m], t[176 + m], t[192 + m], t[208 + m], t[224 + m]};
    b.qs[32 + m] = Tq1Byte(v);
  }
  for (int j = 0; j < 4; ++j) {
    const int v[5] = {t[240 + j], t[244 + j], t[248 + j], t[252 + j], 0};
    b.qh[j] = Tq1Byte(v);
  }
  b.d = fp32_to_fp16(d);
  return b;
}

block_tq2_0 MakeTq2(const std::vector<int>& t, float d) {
  block_tq2_0 b{};
  for (int e = 0; e < kQK_K; ++e) b.qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>(t[e] << (2 * (e % 128 / 32)));
  b.d = fp32_to_fp16(d);
  return b;
}

TEST(TernaryQuantsTest, KnownBytes) {
  const int all_two[5] = {2, 2, 2, 2, 2}, all_one[5] = {1, 1, 1, 1, 1}, first_two[5] = {2, 0, 0, 0, 0};
  EXPECT_EQ(Tq1Byte(all_two), 255);
  EXPECT_EQ(Tq1Byte(all_one), 128);   // ceil(121 * 256 / 243)
  EXPECT_EQ(Tq1Byte(first_two), 171);  // ceil(162 * 256 / 243)
}

TEST(TernaryQuantsTest, DequantizeBlocksBuiltFromTheFormat) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 20; ++trial) {
    const std::vector<int> t = RandomTrits(rng);
    const float d = 0.0123f * (trial + 1);
    const float dh = fp16_to_fp32(fp32_to_fp16(d));
    const block_tq1_0 b1 = MakeTq1(t, d);
    const block_tq2_0 b2 = MakeTq2(t, d);
    std::vector<float> y1(kQK_K), y2(kQK_K);
    ASSERT_TRUE(DequantizeRow(GgmlType::kTQ1_0, &b1, y1.data(), kQK_K).ok());
    ASSERT_TRUE(DequantizeRow(GgmlType::kTQ2_0, &b2, y2.data(), kQK_K).ok());
    for (int e = 0; e < kQK_K; ++e) {
      ASSERT_EQ(y1[e], (t[e] - 1) * dh) << "tq1_0 element " << e;
      ASSERT_EQ(y2[e], (t[e] - 1) * dh) << "tq2_0 element " << e;
    }
  }
}

// BitNet weights, {-1, 0, +1} times a scale exact in fp16, come back exactly,
// and both formats quantize to the very blocks the format definition gives.
TEST(TernaryQuantsTest, TernaryWeightsRoundTripExactly) {
  std::mt19937 rng(9);
  constexpr int kBlocks = 6;
  std::vector<int> trits;
  for (int b = 0; b < kBlocks; ++b) {
    std::vector<int> t = RandomTrits(rng);
    t[b * 7] = 2;  // at least one +1, so the block's absmax is the scale
    trits.insert(trits.end(), t.begin(), t.end());
  }
  const float scale = fp16_to_fp32(fp32_to_fp16(0.0371f));
  std::vector<float> x(trits.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = (trits[i] - 1) * scale;
  for (GgmlType type : {GgmlType::kTQ1_0, GgmlType::kTQ2_0}) {
    std::vector<uint8_t> q(*gguf::ggml_row_size(type, static_cast<int64_t>(x.size())));
    std::vector<float> y(x.size());
    ASSERT_TRUE(QuantizeRow(type, x.data(), q.data(), static_cast<int64_t>(x.size())).ok());
    ASSERT_TRUE(DequantizeRow(type, q.data(), y.data(), static_cast<int64_t>(x.size())).ok());
    EXPECT_EQ(x, y) << gguf::ggml_type_name(type);
    for (int b = 0; b < kBlocks; ++b) {
      const std::vector<int> t(trits.begin() + b * kQK_K, trits.begin() + (b + 1) * kQK_K);
      if (type == GgmlType::kTQ1_0) {
        const block_tq1_0 want = MakeTq1(t, scale);
        EXPECT_EQ(std::memcmp(&want, q.data() + b * sizeof(want), sizeof(want)), 0) << "tq1_0 block " << b;
      } else {
        const block_tq2_0 want = MakeTq2(t, scale);
        EXPECT_EQ(std::memcmp(&want, q.data() + b * sizeof(want), sizeof(want)), 0) << "tq2_0 block " << b;
      }
    }
  }
}

// Any float row: each element becomes -d, 0 or d with d the block's absmax,
// whichever x / d rounds to; a zero block stays zero.
TEST(TernaryQuantsTest, ArbitraryRowsRoundToTheNearestTrit) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  std::vector<float> x(3 * kQK_K);
  for (float& v : x) v = dist(rng);
  std::fill(x.begin() + kQK_K, x.begin() + 2 * kQK_K, 0.0f);
  for (GgmlType type : {GgmlType::kTQ1_0, GgmlType::kTQ2_0}) {
    std::vector<uint8_t> q(*gguf::ggml_row_size(type, static_cast<int64_t>(x.size())));
    std::vector<float> y(x.size());
    ASSERT_TRUE(QuantizeRow(type, x.data(), q.data(), static_cast<int64_t>(x.size())).ok());
    ASSERT_TRUE(DequantizeRow(type, q.data(), y.data(), static_cast<int64_t>(x.size())).ok());
    for (int b = 0; b < 3; ++b) {
      float amax = 0;
      for (int j = 0; j < kQK_K; ++j) amax = std::max(amax, std::fabs(x[b * kQK_K + j]));
      const float d = fp16_to_fp32(fp32_to_fp16(amax));
      for (int j = 0; j < kQK_K; ++j) {
        const size_t i = b * kQK_K + j;
        ASSERT_EQ(y[i], amax > 0 ? std::round(x[i] * (1.0f / amax)) * d : 0.0f) << gguf::ggml_type_name(type) << " " << i;
      }
    }
  }
}

TEST(TernaryQuantsTest, RowsNotAMultipleOf256AreRejected) {
  std::vector<float> x(300, 1.0f);
  std::vector<uint8_t> q(1024);
  for (GgmlType type : {GgmlType::kTQ1_0, GgmlType::kTQ2_0}) {
    for (int64_t n : {1, 32, 255, 300}) {
      const absl::Status s = QuantizeRow(type, x.data(), q.data(), n);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << n;
      EXPECT_NE(s.message().find("not a multiple of 256"), std::string_view::npos) << s;
      EXPECT_EQ(DequantizeRow(type, q.data(), x.data(), n).code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

// Arbitrary bytes (every tq1_0 byte value decodes to some 5 trits, not only
// those the quantizer writes) through every SIMD level against the scalar path.
TEST(TernaryQuantsTest, EveryLevelMatchesScalarOnArbitraryBytes) {
  std::mt19937 rng(17);
  std::normal_distribution<float> dist;
  constexpr int64_t kIn = 1024, kOut = 21;
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kTQ1_0, GgmlType::kTQ2_0}) {
    const size_t row_bytes = *gguf::ggml_row_size(type, kIn);
    const size_t block_bytes = row_bytes / (kIn / kQK_K);
    std::vector<uint8_t> w(row_bytes * kOut);
    for (uint8_t& b : w) b = rng() & 0xFF;
    for (size_t at = block_bytes - 2; at < w.size(); at += block_bytes) {  // finite scales
      const ggml_half d = fp32_to_fp16(0.01f + 0.001f * (at % 97));
      std::memcpy(w.data() + at, &d, 2);
    }
    const WeightView view{type, kIn, kOut, w.data(), row_bytes};
    for (int64_t n_tok : {1, 5}) {
      std::vector<float> x(n_tok * kIn);
      for (float& v : x) v = dist(rng);
      auto run = [&](SimdLevel level) {
        SetSimdLevel(level);
        std::vector<float> y(n_tok * kOut, NAN);
        MatMul(pool, view, x.data(), n_tok, y.data());
        SetSimdLevel(DetectedSimdLevel());
        return y;
      };
      const std::vector<float> ref = run(SimdLevel::kScalar);
      for (int level = 1; level <= static_cast<int>(DetectedSimdLevel()); ++level) {
        const std::vector<float> got = run(static_cast<SimdLevel>(level));
        for (size_t i = 0; i < ref.size(); ++i) {
          ASSERT_NEAR(got[i], ref[i], 1e-4f * (1.0f + std::fabs(ref[i])))
              << gguf::ggml_type_name(type) << " level " << SimdLevelName(static_cast<SimdLevel>(level)) << " " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace llmesh::engine
