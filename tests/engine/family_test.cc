// The family table and the shared mechanisms the families are built from:
// every Arch has exactly one family, sliding-window patterns follow
// llama.cpp's set_swa_pattern, and RoPE angles (plain, linear, divisors,
// YaRN) match values computed here independently in double precision.
#include <cmath>
#include <numbers>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "llmesh/engine/family.h"
#include "llmesh/engine/rope.h"

namespace llmesh::engine {
namespace {

TEST(FamilyTable, EveryArchHasOneFamilyFoundByItsName) {
  std::set<std::string_view> names;
  for (Arch a : {Arch::kLlama, Arch::kQwen2, Arch::kQwen3, Arch::kGemma2, Arch::kGemma3, Arch::kPhi3,
                 Arch::kMistral3, Arch::kOlmo2, Arch::kGranite, Arch::kSmolLM3, Arch::kExaone4, Arch::kBitnet}) {
    const Family& f = FamilyOf(a);
    EXPECT_EQ(f.arch, a);
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    ASSERT_NE(FindFamily(f.name), nullptr);
    EXPECT_EQ(FindFamily(f.name)->arch, a);
    EXPECT_FALSE(f.example.empty());
  }
  EXPECT_EQ(FamilyNames().size(), names.size());
  EXPECT_EQ(FindFamily("mamba"), nullptr);
}

TEST(FamilyTable, SwaPatternFollowsLlamaCpp) {
  EXPECT_EQ(SwaPattern(6, 3), (std::vector<uint8_t>{1, 1, 0, 1, 1, 0}));
  EXPECT_EQ(SwaPattern(4, 2), (std::vector<uint8_t>{1, 0, 1, 0}));
  EXPECT_EQ(SwaPattern(3, 1), (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(SwaPattern(3, 0), (std::vector<uint8_t>{1, 1, 1}));
}

// theta_i = pos * base^(-2i/n) / ff_i, interpolated by freq_scale; YaRN
// blends interpolated and extrapolated angles by a ramp over the pairs
// between the correction dims and scales the magnitude by 1 + 0.1 ln(1/s).
std::vector<double> Expected(const RopeParams& r, int n_rot, int pos) {
  std::vector<double> cs;
  double lo = 0, hi = 0, mscale = r.attn_factor;
  auto corr = [&](double beta) {
    return n_rot * std::log(r.n_ctx_orig / (beta * 2 * std::numbers::pi)) / (2 * std::log(double(r.freq_base)));
  };
  if (r.ext_factor != 0) {
    lo = std::max(0.0, std::floor(corr(r.beta_fast)));
    hi = std::min(double(n_rot - 1), std::ceil(corr(r.beta_slow)));
    mscale *= 1 + 0.1 * std::log(1.0 / r.freq_scale);
  }
  for (int i = 0; i < n_rot / 2; ++i) {
    const double ff = r.freq_factors ? r.freq_factors[i] : 1.0;
    const double extrap = pos * std::pow(double(r.freq_base), -2.0 * i / n_rot) / ff;
    double theta = r.freq_scale * extrap;
    if (r.ext_factor != 0) {
      const double ramp = (1 - std::clamp((i - lo) / std::max(0.001, hi - lo), 0.0, 1.0)) * r.ext_factor;
      theta = theta * (1 - ramp) + extrap * ramp;
    }
    cs.push_back(std::cos(theta) * mscale);
    cs.push_back(std::sin(theta) * mscale);
  }
  return cs;
}

void ExpectAngles(const RopeParams& r, int n_rot, int pos) {
  std::vector<float> got(n_rot);
  RopeCosSin(r, n_rot, pos, got.data());
  const std::vector<double> want = Expected(r, n_rot, pos);
  for (int i = 0; i < n_rot; ++i) EXPECT_NEAR(got[i], want[i], 2e-4 * std::max(1.0, std::fabs(want[i]))) << i;
}

TEST(Rope, PlainLinearDivisorsAndYarnMatchTheFormula) {
  const float ff[8] = {1, 1.5f, 2, 3, 4, 6, 8, 16};
  for (int pos : {0, 1, 7, 100, 3000}) {
    RopeParams plain;
    ExpectAngles(plain, 16, pos);
    RopeParams linear;
    linear.freq_base = 1e6f;
    linear.freq_scale = 0.125f;
    ExpectAngles(linear, 16, pos);
    RopeParams divided;
    divided.freq_factors = ff;
    divided.attn_factor = 1.19f;  // LongRoPE's magnitude
    ExpectAngles(divided, 16, pos);
    RopeParams yarn;
    yarn.freq_base = 1e6f;
    yarn.freq_scale = 1.0f / 32;
    yarn.ext_factor = 1.0f;
    yarn.attn_factor = YarnAttnFactor(yarn.freq_scale, 1.0f);
    yarn.n_ctx_orig = 8;
    ExpectAngles(yarn, 32, pos);
    yarn.n_ctx_orig = 4096;
    yarn.freq_base = 10000;
    ExpectAngles(yarn, 64, pos);
  }
}

TEST(Rope, YarnAttnFactorCancelsTheKernelGainAsLlamaCppDoes) {
  // No log multiplier: get_mscale(s) / (1 + 0.1 ln s) = 1.
  EXPECT_NEAR(YarnAttnFactor(1.0f / 8, 0.0f), 1.0f, 1e-6f);
  // mscale_all_dim 1: the gain the kernel adds back is cancelled outright.
  EXPECT_NEAR(YarnAttnFactor(1.0f / 32, 1.0f), 1.0f / (1.0f + 0.1f * std::log(32.0f)), 1e-6f);
  // Not scaled: nothing to correct.
  EXPECT_NEAR(YarnAttnFactor(1.0f, 0.0f), 1.0f, 1e-6f);
}

}  // namespace
}  // namespace llmesh::engine
