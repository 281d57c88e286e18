#include "llmesh/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace llmesh::engine {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::unique_ptr<Sampler> Make(const SamplingConfig& c, int32_t n_vocab) {
  auto s = Sampler::Create(c, n_vocab);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

std::vector<float> LogitsFromProbs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

std::vector<double> LogSoftmax(const std::vector<float>& l) {
  const double m = *std::max_element(l.begin(), l.end());
  double s = 0;
  for (float x : l) s += std::exp(x - m);
  std::vector<double> out;
  for (float x : l) out.push_back(x - m - std::log(s));
  return out;
}

std::vector<float> RandomLogits(size_t n, uint64_t seed, float scale = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> l(n);
  for (float& x : l) x = d(rng);
  return l;
}

// Draw `n` tokens (accepting none, so the state never changes) and count them.
std::map<int32_t, int> Histogram(Sampler& s, const std::vector<float>& l, int n) {
  std::map<int32_t, int> h;
  for (int i = 0; i < n; ++i) ++h[s.Sample(l).token];
  return h;
}

std::set<int32_t> Keys(const std::map<int32_t, int>& h) {
  std::set<int32_t> k;
  for (const auto& [id, _] : h) k.insert(id);
  return k;
}

// ---- validation -------------------------------------------------------------

TEST(SamplerConfig, DefaultsMatchProto) {
  SamplingConfig c;
  EXPECT_EQ(c.temperature, 1.0f);
  EXPECT_EQ(c.top_k, 0);
  EXPECT_EQ(c.top_p, 1.0f);
  EXPECT_EQ(c.min_p, 0.0f);
  EXPECT_EQ(c.typical_p, 1.0f);
  EXPECT_EQ(c.repetition_penalty, 1.0f);
  EXPECT_EQ(c.frequency_penalty, 0.0f);
  EXPECT_EQ(c.presence_penalty, 0.0f);
  EXPECT_EQ(c.penalty_last_n, 64);
  EXPECT_EQ(c.mirostat, 0);
  EXPECT_EQ(c.mirostat_tau, 5.0f);
  EXPECT_EQ(c.mirostat_eta, 0.1f);
  EXPECT_FALSE(c.seed.has_value());
  EXPECT_EQ(c.n_top_logprobs, 0);
  EXPECT_TRUE(ValidateSamplingConfig(c, 100).ok());
}

TEST(SamplerConfig, RejectsEveryBadFieldByName) {
  struct Case {
    std::string field;
    std::function<void(SamplingConfig&)> bad;
  };
  const std::vector<Case> cases = {
      {"temperature", [](SamplingConfig& c) { c.temperature = kNaN; }},
      {"temperature", [](SamplingConfig& c) { c.temperature = kInf; }},
      {"temperature", [](SamplingConfig& c) { c.temperature = -0.1f; }},
      {"temperature", [](SamplingConfig& c) { c.temperature = 100.5f; }},
      {"top_k", [](SamplingConfig& c) { c.top_k = -1; }},
      {"top_p", [](SamplingConfig& c) { c.top_p = 0.0f; }},
      {"top_p", [](SamplingConfig& c) { c.top_p = 1.01f; }},
      {"top_p", [](SamplingConfig& c) { c.top_p = kNaN; }},
      {"min_p", [](SamplingConfig& c) { c.min_p = -0.01f; }},
      {"min_p", [](SamplingConfig& c) { c.min_p = 1.5f; }},
      {"min_p", [](SamplingConfig& c) { c.min_p = -kInf; }},
      {"typical_p", [](SamplingConfig& c) { c.typical_p = 0.0f; }},
      {"typical_p", [](SamplingConfig& c) { c.typical_p = 2.0f; }},
      {"repetition_penalty", [](SamplingConfig& c) { c.repetition_penalty = -1.0f; }},
      {"repetition_penalty", [](SamplingConfig& c) { c.repetition_penalty = kNaN; }},
      {"frequency_penalty", [](SamplingConfig& c) { c.frequency_penalty = 2.5f; }},
      {"frequency_penalty", [](SamplingConfig& c) { c.frequency_penalty = -2.5f; }},
      {"presence_penalty", [](SamplingConfig& c) { c.presence_penalty = 3.0f; }},
      {"presence_penalty", [](SamplingConfig& c) { c.presence_penalty = kNaN; }},
      {"penalty_last_n", [](SamplingConfig& c) { c.penalty_last_n = -2; }},
      {"mirostat", [](SamplingConfig& c) { c.mirostat = 3; }},
      {"mirostat", [](SamplingConfig& c) { c.mirostat = -1; }},
      {"mirostat_tau", [](SamplingConfig& c) { c.mirostat = 1; c.mirostat_tau = 0.0f; }},
      {"mirostat_eta", [](SamplingConfig& c) { c.mirostat = 2; c.mirostat_eta = -0.1f; }},
      {"mirostat_tau", [](SamplingConfig& c) { c.mirostat_tau = kNaN; }},  // NaN anywhere
      {"logit_bias", [](SamplingConfig& c) { c.logit_bias[100] = 1.0f; }},
      {"logit_bias", [](SamplingConfig& c) { c.logit_bias[-1] = 1.0f; }},
      {"logit_bias", [](SamplingConfig& c) { c.logit_bias[5] = kNaN; }},
      {"logit_bias", [](SamplingConfig& c) { c.logit_bias[5] = -kInf; }},
      {"n_top_logprobs", [](SamplingConfig& c) { c.n_top_logprobs = 21; }},
      {"n_top_logprobs", [](SamplingConfig& c) { c.n_top_logprobs = -1; }},
  };
  for (const Case& tc : cases) {
    SamplingConfig c;
    tc.bad(c);
    const absl::Status s = ValidateSamplingConfig(c, 100);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << tc.field;
    EXPECT_THAT(std::string(s.message()), HasSubstr(tc.field));
    EXPECT_EQ(Sampler::Create(c, 100).status().code(), absl::StatusCode::kInvalidArgument);
  }
  // The value is named too.
  SamplingConfig c;
  c.temperature = -3.5f;
  EXPECT_THAT(std::string(ValidateSamplingConfig(c, 100).message()), HasSubstr("-3.5"));
  c = {};
  c.logit_bias[123] = 1.0f;
  EXPECT_THAT(std::string(ValidateSamplingConfig(c, 100).message()), HasSubstr("123"));
  EXPECT_FALSE(ValidateSamplingConfig(SamplingConfig{}, 0).ok());
}

TEST(SamplerConfig, AcceptsBoundaryValues) {
  SamplingConfig c;
  c.temperature = 0.0f;
  c.top_k = 100000;  // larger than the vocabulary: simply off
  c.top_p = 1.0f;
  c.min_p = 1.0f;
  c.typical_p = 1.0f;
  c.repetition_penalty = 0.0f;
  c.frequency_penalty = -2.0f;
  c.presence_penalty = 2.0f;
  c.penalty_last_n = -1;
  c.logit_bias = {{0, -100.0f}, {99, 100.0f}};
  c.mirostat = 2;
  c.mirostat_tau = 0.5f;
  c.mirostat_eta = 1.0f;
  c.seed = 0;
  c.n_top_logprobs = 20;
  EXPECT_TRUE(ValidateSamplingConfig(c, 100).ok());
  c.temperature = 100.0f;
  c.mirostat = 0;
  c.mirostat_tau = -1.0f;  // ignored while mirostat is off
  EXPECT_TRUE(ValidateSamplingConfig(c, 100).ok());
  EXPECT_NE(Make(c, 100), nullptr);
}

// ---- greedy and determinism ------------------------------------------------

TEST(Sampler, GreedyIsArgMaxLowestIdOnTiesAndIgnoresSeed) {
  const std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f, kNaN, 2.9f};
  for (uint64_t seed : {1u, 2u, 999u}) {
    SamplingConfig c;
    c.temperature = 0.0f;
    c.seed = seed;
    auto s = Make(c, 6);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(s->Sample(l).token, 1);
  }
  // Unset seed too: greedy never touches the RNG.
  SamplingConfig c;
  c.temperature = 0.0f;
  EXPECT_EQ(Make(c, 6)->Sample(l).token, 1);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedsDiffer) {
  auto run = [](uint64_t seed, SamplingConfig c) {
    c.seed = seed;
    auto s = Make(c, 500);
    std::vector<int32_t> out;
    for (int step = 0; step < 200; ++step) {
      const int32_t t = s->Sample(RandomLogits(500, step, 2.0f)).token;
      s->Accept(t);
      out.push_back(t);
    }
    return out;
  };
  std::vector<SamplingConfig> configs(4);
  configs[1].top_k = 40;
  configs[1].top_p = 0.9f;
  configs[1].temperature = 0.8f;
  configs[1].repetition_penalty = 1.3f;
  configs[2].mirostat = 2;
  configs[3].typical_p = 0.7f;
  configs[3].min_p = 0.02f;
  for (const SamplingConfig& c : configs) {
    EXPECT_EQ(run(42, c), run(42, c));
    EXPECT_NE(run(42, c), run(43, c));
  }
}

TEST(Sampler, OutputDoesNotDependOnOtherSequences) {
  // Promise 8: interleaving another sequence's calls changes nothing.
  SamplingConfig c;
  c.seed = 7;
  c.top_p = 0.95f;
  auto alone = Make(c, 300);
  auto a = Make(c, 300);
  SamplingConfig other = c;
  other.seed = 8;
  other.mirostat = 1;
  auto b = Make(other, 300);
  for (int step = 0; step < 100; ++step) {
    const auto l = RandomLogits(300, step);
    b->Accept(b->Sample(RandomLogits(300, step + 1000)).token);
    const int32_t ta = a->Sample(l).token;
    const int32_t t0 = alone->Sample(l).token;
    ASSERT_EQ(ta, t0) << step;
    a->Accept(ta);
    alone->Accept(t0);
  }
}

TEST(Sampler, CloneGivesDeterministicDistinctStreams) {
  SamplingConfig c;
  c.seed = 1234;
  auto parent = Make(c, 64);
  const std::vector<int32_t> prompt = {1, 2, 3};
  parent->AcceptPrompt(prompt);
  const auto l = RandomLogits(64, 5, 1.0f);
  auto stream = [&](Sampler& s) {
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.Sample(l).token);
    return out;
  };
  auto f1a = parent->Clone(1);
  auto f1b = parent->Clone(1);
  auto f2 = parent->Clone(2);
  auto f0 = parent->Clone(0);
  EXPECT_EQ(f1a->seed(), 1235u);
  const auto s1 = stream(*f1a);
  EXPECT_EQ(s1, stream(*f1b));
  EXPECT_NE(s1, stream(*f2));
  // Fork 0 continues as a fresh sampler with the request's seed would.
  EXPECT_EQ(stream(*f0), stream(*Make(c, 64)));
  // Reset rewinds the RNG.
  const auto first = stream(*parent);
  parent->Reset();
  EXPECT_EQ(stream(*parent), first);
}

TEST(Sampler, UnsetSeedIsResolvedOnce) {
  auto s = Make(SamplingConfig{}, 10);
  SamplingConfig c;
  c.seed = s->seed();
  auto t = Make(c, 10);
  const auto l = RandomLogits(10, 1, 1.0f);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s->Sample(l).token, t->Sample(l).token);
}

// ---- distributions ------------------------------------------------------------

TEST(Sampler, TemperatureFrequenciesMatchSoftmax) {
  // 37 tokens: not a multiple of the 16-token blocks, so the tail is covered.
  const auto l = RandomLogits(37, 3, 1.0f);
  for (float temp : {0.5f, 1.0f, 1.7f}) {
    SamplingConfig c;
    c.seed = 99;
    c.temperature = temp;
    auto s = Make(c, 37);
    const int n = 200000;
    const auto h = Histogram(*s, l, n);
    std::vector<float> scaled;
    for (float x : l) scaled.push_back(x / temp);
    const auto ref = LogSoftmax(scaled);
    for (int32_t i = 0; i < 37; ++i) {
      const double p = std::exp(ref[i]);
      const double f = h.count(i) ? h.at(i) / static_cast<double>(n) : 0.0;
      EXPECT_NEAR(f, p, 4 * std::sqrt(p * (1 - p) / n) + 1e-4) << "temp " << temp << " id " << i;
    }
  }
}

TEST(Sampler, TopKNeverLeavesTheKBest) {
  for (int32_t k : {1, 5, 300}) {  // 300 > n/8: the nth_element path
    const auto l = RandomLogits(1000, 11, 1.0f);
    std::vector<int32_t> order(1000);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
    const std::set<int32_t> best(order.begin(), order.begin() + k);
    SamplingConfig c;
    c.seed = 5;
    c.top_k = k;
    c.temperature = 3.0f;  // flatten, so the tail would show up if it could
    auto s = Make(c, 1000);
    const auto h = Histogram(*s, l, 20000);
    for (const auto& [id, _] : h) EXPECT_TRUE(best.count(id)) << "k=" << k << " id " << id;
    if (k <= 5) {
      EXPECT_EQ(Keys(h).size(), static_cast<size_t>(k));
    }
  }
  // Ties at the boundary keep the lowest ids.
  SamplingConfig c;
  c.seed = 5;
  c.top_k = 2;
  auto s = Make(c, 5);
  EXPECT_EQ(Keys(Histogram(*s, {1.0f, 2.0f, 1.0f, 1.0f, 0.0f}, 2000)), (std::set<int32_t>{0, 1}));
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
  // p = .10 .50 .15 .25 (ids shuffled): sorted .50 .25 .15 .10.
  const auto l = LogitsFromProbs({0.10, 0.50, 0.15, 0.25});
  auto kept = [&](float p) {
    SamplingConfig c;
    c.seed = 1;
    c.top_p = p;
    auto s = Make(c, 4);
    return Keys(Histogram(*s, l, 5000));
  };
  EXPECT_EQ(kept(0.4f), (std::set<int32_t>{1}));
  EXPECT_EQ(kept(0.7f), (std::set<int32_t>{1, 3}));
  EXPECT_EQ(kept(0.8f), (std::set<int32_t>{1, 3, 2}));
  EXPECT_EQ(kept(0.95f), (std::set<int32_t>{0, 1, 2, 3}));
  // Frequencies inside the nucleus are renormalized: .50/.75 and .25/.75.
  SamplingConfig c;
  c.seed = 2;
  c.top_p = 0.7f;
  auto s = Make(c, 4);
  const auto h = Histogram(*s, l, 60000);
  EXPECT_NEAR(h.at(1) / 60000.0, 2.0 / 3.0, 0.01);
}

TEST(Sampler, TopPOnLargeVocabularyMatchesFullSort) {
  // 152k tokens, peaked head and a long tail: exercises the prefilter.
  const int32_t n = 152064;
  auto l = RandomLogits(n, 17, 1.0f);
  for (int i = 0; i < 50; ++i) l[(i * 7919) % n] += 9.0f - 0.15f * i;
  const auto lp = LogSoftmax(l);
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return lp[a] > lp[b]; });
  for (float p : {0.5f, 0.9f}) {
    std::set<int32_t> nucleus;
    double cum = 0;
    for (int32_t id : order) {
      nucleus.insert(id);
      cum += std::exp(lp[id]);
      if (cum >= p + 1e-4) break;  // one token of slack for summation order
    }
    SamplingConfig c;
    c.seed = 3;
    c.top_p = p;
    auto s = Make(c, n);
    const auto h = Histogram(*s, l, 300);
    for (const auto& [id, _] : h) EXPECT_TRUE(nucleus.count(id)) << "p=" << p << " id " << id;
  }
}

TEST(Sampler, MinPKeepsTokensAboveFractionOfMax) {
  // min_p .2 of p_max .4 → threshold .08.
  const auto l = LogitsFromProbs({0.06, 0.40, 0.30, 0.04, 0.20});
  SamplingConfig c;
  c.seed = 4;
  c.min_p = 0.2f;
  auto s = Make(c, 5);
  EXPECT_EQ(Keys(Histogram(*s, l, 5000)), (std::set<int32_t>{1, 2, 4}));
  // After top_k (candidate path).
  c.top_k = 4;
  c.min_p = 0.6f;  // threshold .24
  auto t = Make(c, 5);
  EXPECT_EQ(Keys(Histogram(*t, l, 5000)), (std::set<int32_t>{1, 2}));
}

TEST(Sampler, TypicalKeepsTokensNearestTheEntropy) {
  // p = .4 .3 .2 .1: H = 1.2799 nats; |surprise - H| = .364 .076 .329 1.023,
  // so the order is ids 1, 2, 0, 3 — the most likely token is not first.
  const auto l = LogitsFromProbs({0.4, 0.3, 0.2, 0.1});
  auto kept = [&](float p) {
    SamplingConfig c;
    c.seed = 6;
    c.typical_p = p;
    auto s = Make(c, 4);
    return Keys(Histogram(*s, l, 5000));
  };
  EXPECT_EQ(kept(0.25f), (std::set<int32_t>{1}));
  EXPECT_EQ(kept(0.45f), (std::set<int32_t>{1, 2}));
  EXPECT_EQ(kept(0.55f), (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ(kept(0.95f), (std::set<int32_t>{0, 1, 2, 3}));
}

// ---- penalties and bias -----------------------------------------------------------

TEST(Sampler, PenaltiesFollowLlamaCppFormulasWithinWindow) {
  SamplingConfig c;
  c.seed = 1;
  c.repetition_penalty = 1.5f;
  c.frequency_penalty = 0.5f;
  c.presence_penalty = 0.25f;
  c.penalty_last_n = 4;
  auto s = Make(c, 8);
  const std::vector<float> l = {2.0f, -2.0f, 1.0f, 0.5f, 3.0f, -1.0f, 0.0f, 1.0f};
  const std::vector<int32_t> prompt = {0, 1, 0, 0};
  s->AcceptPrompt(prompt);
  s->Accept(5);
  s->Accept(3);  // window: 0 0 5 3 (token 1 has left it)
  s->Sample(l);
  const auto adj = s->last_adjusted_logits();
  EXPECT_FLOAT_EQ(adj[0], 2.0f / 1.5f - 2 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(adj[1], -2.0f);
  EXPECT_FLOAT_EQ(adj[2], 1.0f);
  EXPECT_FLOAT_EQ(adj[3], 0.5f / 1.5f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(adj[4], 3.0f);
  EXPECT_FLOAT_EQ(adj[5], -1.0f * 1.5f - 0.5f - 0.25f);  // negative: multiplied
  EXPECT_FLOAT_EQ(adj[7], 1.0f);

  // Whole context: nothing leaves the window.
  c.penalty_last_n = -1;
  auto all = Make(c, 8);
  all->AcceptPrompt(prompt);
  all->Accept(5);
  all->Accept(3);
  all->Sample(l);
  EXPECT_FLOAT_EQ(all->last_adjusted_logits()[1], -2.0f * 1.5f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(all->last_adjusted_logits()[0], 2.0f / 1.5f - 3 * 0.5f - 0.25f);

  // Window 0: off. Reset: window emptied.
  c.penalty_last_n = 0;
  auto off = Make(c, 8);
  off->AcceptPrompt(prompt);
  off->Sample(l);
  EXPECT_FLOAT_EQ(off->last_adjusted_logits()[0], 2.0f);
  all->Reset();
  all->Sample(l);
  EXPECT_FLOAT_EQ(all->last_adjusted_logits()[0], 2.0f);
}

TEST(Sampler, RepetitionPenaltyZeroStaysFinite) {
  SamplingConfig c;
  c.seed = 1;
  c.repetition_penalty = 0.0f;
  auto s = Make(c, 4);
  s->Accept(1);
  const auto r = s->Sample(std::vector<float>{0.0f, 1.0f, 2.0f, -1.0f});
  EXPECT_EQ(r.token, 1);  // divided by zero → the largest finite logit
  EXPECT_TRUE(std::isfinite(s->last_adjusted_logits()[1]));
}

TEST(Sampler, LogitBiasIsAdded) {
  SamplingConfig c;
  c.temperature = 0.0f;
  c.logit_bias = {{3, 5.0f}, {0, -100.0f}};
  auto s = Make(c, 5);
  const std::vector<float> l = {4.0f, 1.0f, 0.0f, -0.5f, 2.0f};
  EXPECT_EQ(s->Sample(l).token, 3);
  const auto adj = s->last_adjusted_logits();
  EXPECT_FLOAT_EQ(adj[0], -96.0f);
  EXPECT_FLOAT_EQ(adj[3], 4.5f);
  EXPECT_FLOAT_EQ(adj[4], 2.0f);
}

// ---- mirostat ----------------------------------------------------------------------

// Zipf-like: logit = -s * log(rank).
std::vector<float> Zipf(int32_t n, float s) {
  std::vector<float> l(n);
  for (int32_t i = 0; i < n; ++i) l[i] = -s * std::log(static_cast<float>(i + 1));
  return l;
}

TEST(Sampler, MirostatV2KeepsSurpriseNearTau) {
  const int32_t n = 2000;
  const auto l = Zipf(n, 1.1f);
  const auto lp = LogSoftmax(l);
  SamplingConfig c;
  c.seed = 21;
  c.mirostat = 2;
  c.mirostat_tau = 3.0f;
  c.mirostat_eta = 0.1f;
  auto s = Make(c, n);
  double total = 0;
  int counted = 0;
  for (int step = 0; step < 4000; ++step) {
    // The surprise mirostat steers: under the distribution it truncated at mu.
    const double mu = s->mirostat_mu();
    double mass = 0;
    for (double x : lp) {
      if (-x / std::log(2.0) <= mu) mass += std::exp(x);
    }
    const int32_t t = s->Sample(l).token;
    if (mass == 0) mass = std::exp(lp[t]);
    if (step >= 500) {
      total += -(lp[t] - std::log(mass)) / std::log(2.0);
      ++counted;
    }
    s->Accept(t);
  }
  EXPECT_NEAR(total / counted, 3.0, 0.25);
  EXPECT_TRUE(std::isfinite(s->mirostat_mu()));
}

TEST(Sampler, MirostatV1AdaptsAndStaysFinite) {
  const int32_t n = 5000;
  const auto l = Zipf(n, 1.2f);
  SamplingConfig c;
  c.seed = 22;
  c.mirostat = 1;
  c.mirostat_tau = 4.0f;
  auto s = Make(c, n);
  const float mu0 = s->mirostat_mu();
  EXPECT_EQ(mu0, 8.0f);
  std::set<int32_t> seen;
  for (int step = 0; step < 2000; ++step) {
    const int32_t t = s->Sample(l).token;
    seen.insert(t);
    s->Accept(t);
  }
  EXPECT_TRUE(std::isfinite(s->mirostat_mu()));
  EXPECT_NE(s->mirostat_mu(), mu0);
  EXPECT_GT(seen.size(), 3u);
  // Degenerate (flat) input must not break the Zipf fit.
  const std::vector<float> flat(100, 0.0f);
  auto f = Make(c, 100);
  for (int i = 0; i < 10; ++i) {
    const int32_t t = f->Sample(flat).token;
    ASSERT_GE(t, 0);
    ASSERT_LT(t, 100);
    f->Accept(t);
  }
}

// ---- logprobs ----------------------------------------------------------------------

TEST(Sampler, LogprobsAreLogSoftmaxOfRawLogits) {
  const int32_t n = 1000;
  const auto l = RandomLogits(n, 31, 4.0f);
  const auto ref = LogSoftmax(l);
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
  SamplingConfig c;
  c.seed = 8;
  c.temperature = 0.7f;
  c.top_k = 10;
  c.repetition_penalty = 1.3f;
  c.logit_bias = {{order[0], -50.0f}};  // bias must not show in the logprobs
  c.n_top_logprobs = 20;
  auto s = Make(c, n);
  s->Accept(order[1]);
  for (int i = 0; i < 20; ++i) {
    const SampleResult r = s->Sample(l);
    EXPECT_NEAR(r.logprob, ref[r.token], 1e-4);
    ASSERT_EQ(r.top_logprobs.size(), 20u);
    for (size_t j = 0; j < 20; ++j) {
      EXPECT_EQ(r.top_logprobs[j].token, order[j]);
      EXPECT_NEAR(r.top_logprobs[j].logprob, ref[order[j]], 1e-4);
    }
  }
  // Ties: lowest id first.
  SamplingConfig g;
  g.temperature = 0.0f;
  g.n_top_logprobs = 2;
  const auto r = Make(g, 3)->Sample(std::vector<float>{1.0f, 2.0f, 2.0f});
  EXPECT_EQ(r.top_logprobs[0].token, 1);
  EXPECT_EQ(r.top_logprobs[1].token, 2);
  EXPECT_NEAR(r.logprob, std::log(std::exp(2.0) / (std::exp(1.0) + 2 * std::exp(2.0))), 1e-5);
}

// ---- robustness and the processor hook -------------------------------------------

TEST(Sampler, NonFiniteLogitsNeverCrash) {
  const std::vector<float> l = {kNaN, -kInf, 1.0f, kInf, kNaN, 0.5f};
  for (int mode = 0; mode < 4; ++mode) {
    SamplingConfig c;
    c.seed = 1;
    c.mirostat = mode == 3 ? 2 : 0;
    c.top_p = mode == 1 ? 0.9f : 1.0f;
    c.top_k = mode == 2 ? 2 : 0;
    auto s = Make(c, 6);
    for (int i = 0; i < 50; ++i) {
      const auto r = s->Sample(l);
      EXPECT_EQ(r.token, 3) << mode;  // +inf is the certain winner
      s->Accept(r.token);
    }
  }
  auto s = Make(SamplingConfig{}, 3);
  EXPECT_EQ(s->Sample(std::vector<float>{-kInf, -kInf, -kInf}).token, 0);
  EXPECT_EQ(s->Sample(std::span<const float>()).token, 0);
}

class AllowOnly : public LogitProcessor {
 public:
  explicit AllowOnly(std::set<int32_t> allowed) : allowed_(std::move(allowed)) {}
  void Apply(std::span<float> logits) override {
    for (size_t i = 0; i < logits.size(); ++i) {
      if (!allowed_.count(static_cast<int32_t>(i))) logits[i] = -kInf;
    }
  }
  void Accept(int32_t token) override { accepted.push_back(token); }
  void Reset() override { accepted.clear(); }
  std::unique_ptr<LogitProcessor> Clone() const override {
    return std::make_unique<AllowOnly>(*this);
  }
  std::vector<int32_t> accepted;

 private:
  std::set<int32_t> allowed_;
};

TEST(Sampler, ProcessorsMaskBeforeSamplingAndSeeGeneratedTokensOnly) {
  SamplingConfig c;
  c.seed = 3;
  auto s = Make(c, 50);
  auto proc = std::make_unique<AllowOnly>(std::set<int32_t>{3, 7});
  AllowOnly* p = proc.get();
  s->AddProcessor(std::move(proc));
  const std::vector<int32_t> prompt = {1, 2};
  s->AcceptPrompt(prompt);
  const auto h = Histogram(*s, RandomLogits(50, 2, 1.0f), 2000);
  EXPECT_EQ(Keys(h), (std::set<int32_t>{3, 7}));
  s->Accept(7);
  EXPECT_EQ(p->accepted, (std::vector<int32_t>{7}));
  auto fork = s->Clone(1);
  EXPECT_EQ(Keys(Histogram(*fork, RandomLogits(50, 2, 1.0f), 500)), (std::set<int32_t>{3, 7}));
}

}  // namespace
}  // namespace llmesh::engine
