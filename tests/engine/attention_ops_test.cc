// The attention inner loops against a double-precision reference, on every
// SIMD level this CPU has (the AVX-512 bodies and the portable ones).
#include "llmesh/engine/attention_ops.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/matmul.h"

namespace llmesh::engine {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

class AttentionOpsTest : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (GetParam() > DetectedSimdLevel()) GTEST_SKIP() << "CPU lacks " << SimdLevelName(GetParam());
    SetSimdLevel(GetParam());
  }
  void TearDown() override { SetSimdLevel(DetectedSimdLevel()); }
};

// Head counts cover the blocks of 4 and every remainder.
constexpr int64_t kHeadCounts[] = {1, 2, 3, 5, 8};

TEST_P(AttentionOpsTest, ScoresMatchReference) {
  for (int64_t hd : {16, 64, 80, 128, 256, 5}) {
    for (int32_t n : {1, 3, 4, 7, 33}) {
      for (int64_t heads : kHeadCounts) {
        const size_t stride = static_cast<size_t>(hd) + 8;  // rows of a wider KV row
        const size_t ss = static_cast<size_t>(n) + 3;       // a row per head, wider than n
        const auto q = Random(hd * heads, 1), k = Random(stride * n, 2);
        std::vector<float> s(ss * heads, -1.0f);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        attn_scores(q.data(), heads, k.data(), stride, n, hd, scale, s.data(), ss);
        for (int64_t h = 0; h < heads; ++h) {
          for (int32_t r = 0; r < n; ++r) {
            double ref = 0;
            for (int64_t i = 0; i < hd; ++i) ref += double(q[h * hd + i]) * k[r * stride + i];
            EXPECT_NEAR(s[h * ss + r], ref * scale, 1e-5 * std::sqrt(double(hd)))
                << "hd " << hd << " n " << n << " head " << h << " r " << r;
          }
          for (size_t r = n; r < ss; ++r) EXPECT_EQ(s[h * ss + r], -1.0f) << "wrote past the row";
        }
      }
    }
  }
}

TEST_P(AttentionOpsTest, SoftmaxMatchesReference) {
  for (int64_t n : {1, 5, 16, 17, 100, 1000}) {
    auto x = Random(n, 3, 8.0f);  // spread wide enough to reach exp's far range
    x[0] = -200.0f;               // underflows to 0
    auto p = x;
    attn_softmax(p.data(), n);
    double max = x[0], sum = 0;
    for (float v : x) max = std::max<double>(max, v);
    for (float v : x) sum += std::exp(double(v) - max);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = std::exp(double(x[i]) - max) / sum;
      // float's rounding of x - max alone moves exp(x - max) by ~6e-8 * |x - max|;
      // the portable path sums n floats in order.
      const double tol = ref * (5e-7 + 1.2e-7 * std::abs(double(x[i]) - max) + 1e-9 * n) + 1e-30;
      EXPECT_NEAR(p[i], ref, tol) << "n " << n << " i " << i;
    }
  }
}

TEST_P(AttentionOpsTest, AccumulateMatchesReference) {
  for (int64_t hd : {16, 64, 128, 144, 256, 272, 7}) {
    for (int64_t heads : kHeadCounts) {
      const int32_t n = 37;
      const size_t stride = static_cast<size_t>(hd) * 2;
      const size_t ps = n + 5;
      const auto p = Random(ps * heads, 4), v = Random(stride * n, 5), o0 = Random(hd * heads, 6);
      auto o = o0;
      attn_accumulate(p.data(), ps, heads, v.data(), stride, n, hd, o.data());
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t i = 0; i < hd; ++i) {
          double ref = o0[h * hd + i];
          for (int32_t r = 0; r < n; ++r) ref += double(p[h * ps + r]) * v[r * stride + i];
          EXPECT_NEAR(o[h * hd + i], ref, 1e-5 * std::sqrt(double(n))) << "hd " << hd << " head " << h << " i " << i;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, AttentionOpsTest,
                         ::testing::Values(SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512),
                         [](const auto& info) { return std::string(SimdLevelName(info.param)); });

}  // namespace
}  // namespace llmesh::engine
