#include "llmesh/engine/sampling_basic.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace llmesh::engine {
namespace {

TEST(SamplingBasic, GreedyIsArgMaxLowestIndexOnTies) {
  const std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(ArgMax(l), 1);
  BasicSampler s({.temperature = 0.0f});
  EXPECT_EQ(s.Sample(l), 1);
}

TEST(SamplingBasic, SameSeedSameSequence) {
  const std::vector<float> l = {1.0f, 1.1f, 0.9f, 1.05f, 0.2f};
  BasicSampler a({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 9});
  BasicSampler b({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 9});
  BasicSampler c({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 10});
  std::vector<int> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(a.Sample(l));
    sb.push_back(b.Sample(l));
    sc.push_back(c.Sample(l));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(SamplingBasic, TopKAndTopPRestrictTheCandidates) {
  const std::vector<float> l = {5.0f, 4.0f, 3.0f, 0.0f, -2.0f};
  BasicSampler k2({.temperature = 5.0f, .top_k = 2, .top_p = 1.0f, .seed = 1});
  BasicSampler p({.temperature = 1.0f, .top_k = 0, .top_p = 0.5f, .seed = 1});
  for (int i = 0; i < 500; ++i) {
    EXPECT_LT(k2.Sample(l), 2);
    EXPECT_EQ(p.Sample(l), 0);  // p(0) = 0.66 > 0.5 alone
  }
}

TEST(SamplingBasic, FollowsTheDistribution) {
  const std::vector<float> l = {0.0f, std::log(3.0f)};  // p = 1/4, 3/4
  BasicSampler s({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 5});
  int ones = 0;
  for (int i = 0; i < 20000; ++i) ones += s.Sample(l);
  EXPECT_NEAR(ones / 20000.0, 0.75, 0.02);
}

}  // namespace
}  // namespace llmesh::engine
