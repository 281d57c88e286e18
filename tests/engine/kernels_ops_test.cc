#include "llmesh/engine/matmul.h"
#include "llmesh/engine/ops.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/membw.h"

namespace llmesh::engine {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

TEST(OpsTest, DotAndAxpyMatchDoubleReference) {
  for (int64_t n : {1, 7, 16, 33, 2048}) {
    auto a = Random(n, 1), b = Random(n, 2);
    double ref = 0;
    for (int64_t i = 0; i < n; ++i) ref += double(a[i]) * b[i];
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-4 * std::sqrt(double(n)));
    auto y = a;
    axpy(y.data(), 0.5f, b.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(y[i], a[i] + 0.5f * b[i]);
  }
}

TEST(OpsTest, RmsNormSoftmaxSwiglu) {
  const int64_t n = 67;
  auto x = Random(n, 3), w = Random(n, 4), g = Random(n, 5);
  std::vector<float> out(n);
  rms_norm(out.data(), x.data(), w.data(), n, 1e-5f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(out[i], x[i] * inv * w[i], 1e-5);

  auto p = x;
  softmax(p.data(), n);
  double sum = 0;
  for (float v : p) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_NEAR(p[1] / p[0], std::exp(x[1] - x[0]), 1e-4);

  swiglu(out.data(), g.data(), x.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(out[i], g[i] / (1 + std::exp(-g[i])) * x[i], 1e-5);
  add(out.data(), x.data(), w.data(), n);
  scale(out.data(), 2.0f, n);
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(out[i], 2 * (x[i] + w[i]));
}

// The AVX-512 SwiGLU computes exp itself: every level against std::exp,
// including gates far past where exp(-g) overflows a float.
TEST(OpsTest, SwigluAtEveryLevelAndExtremeGates) {
  std::vector<float> g = Random(70, 9), u = Random(70, 10);
  for (float v : {-1000.0f, -120.0f, -88.0f, -20.0f, -1e-3f, 0.0f, 1e-3f, 20.0f, 88.0f, 120.0f, 1000.0f}) g.push_back(v);
  u.resize(g.size(), 1.5f);
  for (int level = 0; level <= static_cast<int>(DetectedSimdLevel()); ++level) {
    SetSimdLevel(static_cast<SimdLevel>(level));
    std::vector<float> out(g.size());
    swiglu(out.data(), g.data(), u.data(), static_cast<int64_t>(g.size()));
    for (size_t i = 0; i < g.size(); ++i) {
      const double want = g[i] / (1 + std::exp(-double(g[i]))) * u[i];
      EXPECT_NEAR(out[i], want, 1e-5 * (1 + std::abs(want))) << "g " << g[i] << " level " << level;
    }
  }
  SetSimdLevel(DetectedSimdLevel());
}

TEST(MemBwTest, MeasuresSomethingPlausible) {
  ThreadPool pool(2);
  const double gbs = MeasureReadBandwidth(pool, 64 << 20);
  EXPECT_GT(gbs, 0.5);
  EXPECT_LT(gbs, 2000.0);
}

}  // namespace
}  // namespace llmesh::engine
