#include "llmesh/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "llmesh/engine/grammar.h"
#include "sampler_math.h"

namespace llmesh::engine {

using sampler_internal::ArgMaxLowest;
using sampler_internal::ByLogit;
using sampler_internal::CleanLogit;
using sampler_internal::CopyClean;
using sampler_internal::FastExp;
using sampler_internal::kLanes;
using sampler_internal::kNegInf;
using sampler_internal::MaxOf;
using sampler_internal::SelectTopK;
using sampler_internal::SoftmaxCandidates;
using sampler_internal::SortPrefixUntil;
using sampler_internal::SumExp;

namespace {

constexpr float kFloatMax = std::numeric_limits<float>::max();
constexpr float kLn2 = 0.69314718055994531f;
constexpr size_t kMirostatM = 100;  // tokens mirostat v1 fits its Zipf exponent on (llama.cpp's m)

uint64_t RandomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

bool ByKey(const Sampler::Candidate& a, const Sampler::Candidate& b) {
  return a.key < b.key || (a.key == b.key && a.id < b.id);
}

}  // namespace

absl::Status ValidateSamplingNumbers(const SamplingConfig& c, int32_t n_vocab);  // sampler_config.cc

absl::StatusOr<std::unique_ptr<Sampler>> Sampler::Create(const SamplingConfig& config,
                                                         int32_t n_vocab) {
  return Create(config, n_vocab, nullptr);
}

absl::StatusOr<std::unique_ptr<Sampler>> Sampler::Create(const SamplingConfig& config,
                                                         int32_t n_vocab,
                                                         std::shared_ptr<const TokenPieces> vocab) {
  if (absl::Status s = ValidateSamplingNumbers(config, n_vocab); !s.ok()) return s;
  auto grammar = CompileSamplingGrammar(config);
  if (!grammar.ok()) return grammar.status();
  if (*grammar != nullptr && vocab == nullptr) {
    return absl::FailedPreconditionError("sampling: a grammar needs the model's vocabulary pieces");
  }
  const uint64_t seed = config.seed.has_value() ? *config.seed : RandomSeed();
  std::unique_ptr<Sampler> sampler(new Sampler(config, n_vocab, seed));
  if (*grammar != nullptr) {
    sampler->AddProcessor(std::make_unique<GrammarConstraint>(std::move(*grammar), std::move(vocab)));
  }
  return sampler;
}

Sampler::Sampler(const SamplingConfig& config, int32_t n_vocab, uint64_t seed)
    : config_(config), n_vocab_(n_vocab), seed_(seed), rng_(seed) {
  mirostat_mu_ = 2.0f * config_.mirostat_tau;  // llama.cpp's starting point
}

// ---- state: penalty window, mirostat, processors -------------------------

bool Sampler::PenaltiesActive() const {
  return config_.penalty_last_n != 0 &&
         (config_.repetition_penalty != 1.0f || config_.frequency_penalty != 0.0f ||
          config_.presence_penalty != 0.0f);
}

void Sampler::PushPenaltyToken(int32_t token) {
  if (!PenaltiesActive()) return;  // nothing reads the window: skip the bookkeeping
  ++counts_[token];
  if (config_.penalty_last_n < 0) return;  // whole context: counts only, never evicted
  const size_t cap = static_cast<size_t>(config_.penalty_last_n);
  // The ring grows lazily: penalty_last_n comes from the request and may be
  // far larger than any context, so it must not size an allocation up front.
  if (window_.size() < cap) {
    window_.push_back(token);
    return;
  }
  const int32_t evicted = window_[window_head_];
  window_[window_head_] = token;
  window_head_ = (window_head_ + 1) % cap;
  auto it = counts_.find(evicted);
  if (--it->second == 0) counts_.erase(it);
}

void Sampler::AcceptPrompt(std::span<const int32_t> tokens) {
  for (int32_t t : tokens) {
    if (t >= 0 && t < n_vocab_) PushPenaltyToken(t);
  }
}

void Sampler::Accept(int32_t token) {
  if (token < 0 || token >= n_vocab_) return;
  PushPenaltyToken(token);
  for (auto& p : processors_) p->Accept(token);
  // Mirostat learns from the surprise of what it drew; a token the scheduler
  // forced instead (none today) carries no such information.
  if (config_.mirostat != 0 && token == pending_token_) {
    mirostat_mu_ -= config_.mirostat_eta * (pending_surprise_ - config_.mirostat_tau);
  }
  pending_token_ = -1;
}

void Sampler::Reset() {
  window_.clear();
  window_head_ = 0;
  counts_.clear();
  mirostat_mu_ = 2.0f * config_.mirostat_tau;
  pending_token_ = -1;
  for (auto& p : processors_) p->Reset();
  rng_.seed(seed_);
}

std::unique_ptr<Sampler> Sampler::Clone(uint64_t index) const {
  std::unique_ptr<Sampler> s(new Sampler(config_, n_vocab_, seed_ + index));
  s->window_ = window_;
  s->window_head_ = window_head_;
  s->counts_ = counts_;
  s->mirostat_mu_ = mirostat_mu_;
  for (const auto& p : processors_) s->processors_.push_back(p->Clone());
  return s;
}

void Sampler::AddProcessor(std::unique_ptr<LogitProcessor> processor) {
  if (processor != nullptr) processors_.push_back(std::move(processor));
}

double Sampler::NextUniform() {
  // mt19937_64's output is fixed by the standard; uniform_real_distribution's
  // mapping is not, so map the top 53 bits ourselves.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

// ---- the chain -------------------------------------------------------------

SampleResult Sampler::Sample(std::span<const float> logits) {
  SampleResult result;
  n_cur_ = static_cast<int32_t>(std::min(logits.size(), static_cast<size_t>(n_vocab_)));
  pending_token_ = -1;
  if (n_cur_ == 0) {
    result.logprob = kNegInf;
    return result;
  }
  const std::span<const float> raw = logits.first(static_cast<size_t>(n_cur_));
  if (work_.size() < static_cast<size_t>(n_vocab_)) work_.resize(n_vocab_);
  const std::span<float> w(work_.data(), raw.size());
  CopyClean(raw, w.data());

  // The raw distribution, for logprobs: log Σ exp(raw) with the max factored out.
  const float raw_max = MaxOf(w);
  const float raw_lse = raw_max == kNegInf ? kNegInf : raw_max + std::log(SumExp(w, raw_max, 1.0f));
  if (config_.n_top_logprobs > 0) {
    SelectTopK(raw, static_cast<size_t>(config_.n_top_logprobs), cand_);
    for (const Candidate& c : cand_) result.top_logprobs.push_back({c.id, c.logit - raw_lse});
  }

  for (auto& p : processors_) p->Apply(w);
  ApplyBiasAndPenalties();

  int32_t token;
  if (config_.temperature == 0.0f || MaxOf(w) == kNegInf) {
    token = ArgMaxLowest(w);  // greedy; also the answer when everything is masked
  } else if (config_.mirostat != 0) {
    token = SampleMirostat();
  } else {
    token = SampleChain();
  }
  result.token = token;
  result.logprob = raw_lse == kNegInf ? kNegInf : CleanLogit(raw[token]) - raw_lse;
  return result;
}

void Sampler::ApplyBiasAndPenalties() {
  for (const auto& [id, bias] : config_.logit_bias) {
    if (id < n_cur_) work_[id] += bias;
  }
  if (!PenaltiesActive()) return;
  const float rep = config_.repetition_penalty;
  // Sparse: only tokens in the window are touched, in any order (each id once).
  for (const auto& [id, count] : counts_) {
    if (id >= n_cur_) continue;
    float& l = work_[id];
    if (l == kNegInf) continue;  // masked stays masked (and -inf * 0 would be NaN)
    // llama.cpp: shrink toward "less likely" whatever the sign.
    if (l <= 0.0f) {
      l *= rep;
    } else {
      l /= rep;
    }
    l -= static_cast<float>(count) * config_.frequency_penalty +
         (count > 0 ? config_.presence_penalty : 0.0f);
    l = std::clamp(l, -kFloatMax, kFloatMax);  // repetition_penalty 0 divides by zero
  }
}

int32_t Sampler::SampleChain() {
  cand_all_ = true;
  if (config_.top_k > 0 && config_.top_k < n_cur_) StageTopK(config_.top_k);
  if (config_.typical_p < 1.0f) StageTypical(config_.typical_p);
  if (config_.top_p < 1.0f) StageTopP(config_.top_p);
  if (config_.min_p > 0.0f) StageMinP(config_.min_p);
  const float inv_temp = 1.0f / config_.temperature;
  return cand_all_ ? DrawDense(inv_temp) : DrawFromCandidates(inv_temp, nullptr);
}

void Sampler::MaterializeAbove(float threshold) {
  cand_.clear();
  for (int32_t i = 0; i < n_cur_; ++i) {
    const float l = work_[i];
    if (l >= threshold && l != kNegInf) cand_.push_back({i, l, 0.0f, 0.0f});
  }
  cand_all_ = false;
}

void Sampler::StageTopK(int32_t k) {
  const std::span<const float> w(work_.data(), static_cast<size_t>(n_cur_));
  if (k <= n_cur_ / 8) {
    SelectTopK(w, static_cast<size_t>(k), cand_);  // one compare per token, sorted result
    cand_all_ = false;
    return;
  }
  // Large k: a heap would churn; select in O(n) and leave the k unsorted
  // (later stages sort only the prefix they need).
  MaterializeAbove(kNegInf);
  if (cand_.size() > static_cast<size_t>(k)) {
    std::nth_element(cand_.begin(), cand_.begin() + (k - 1), cand_.end(), ByLogit);
    cand_.resize(k);
  }
}

void Sampler::StageTypical(float p) {
  if (cand_all_) MaterializeAbove(kNegInf);
  if (cand_.empty()) return;
  float m = 0.0f;
  const float log_z = SoftmaxCandidates(cand_, 1.0f, &m);
  double entropy = 0.0;
  for (Candidate& c : cand_) {
    const float surprise = log_z - (c.logit - m);  // -log p
    if (c.p > 0.0f) entropy += static_cast<double>(c.p) * surprise;
    c.key = surprise;
  }
  for (Candidate& c : cand_) c.key = std::fabs(c.key - static_cast<float>(entropy));
  // llama.cpp keeps tokens (closest to the entropy first) until their mass exceeds p.
  const size_t keep = SortPrefixUntil(std::span<Candidate>(cand_), ByKey,
                                      [p](double cum) { return cum > p; });
  if (keep > 0) cand_.resize(keep);
}

void Sampler::StageTopP(float p) {
  auto reached = [p](double cum) { return cum >= p; };
  if (!cand_all_) {  // after top_k / typical: a small set, sort what is needed
    SoftmaxCandidates(cand_, 1.0f, nullptr);
    const size_t keep = SortPrefixUntil(std::span<Candidate>(cand_), ByLogit, reached);
    if (keep > 0) cand_.resize(keep);
    return;
  }
  // Whole vocabulary: a sort is O(n log n) and, on flat distributions, the
  // nucleus is most of the vocabulary. Instead bucket tokens by distance below
  // the max logit and sum each bucket's mass (one pass); every bucket above
  // the one where the cumulative mass crosses p is kept whole, unsorted, and
  // only that boundary bucket is sorted to find the exact cut.
  constexpr int kBuckets = 1024;
  constexpr float kRange = 32.0f;  // logits further below the max share the last bucket
  const std::span<const float> w(work_.data(), static_cast<size_t>(n_cur_));
  const float m = MaxOf(w);
  auto bucket_of = [m](float l) {
    const float d = std::min((m - l) * (kBuckets / kRange), static_cast<float>(kBuckets - 1));
    return static_cast<int>(d);  // d in [0, kBuckets-1]: -inf gives +inf, clamped first
  };
  double mass[kBuckets] = {};
  for (float l : w) mass[bucket_of(l)] += FastExp(l - m);
  double z = 0.0;
  for (double x : mass) z += x;
  int boundary = kBuckets - 1;
  double above = 0.0;  // mass of the buckets before the boundary, normalized
  for (int b = 0; b < kBuckets; ++b) {
    if ((above + mass[b]) / z >= p) {
      boundary = b;
      break;
    }
    above += mass[b];
  }
  above /= z;
  cand_.clear();
  for (int32_t i = 0; i < n_cur_; ++i) {
    const float l = work_[i];
    const int b = bucket_of(l);
    if (b <= boundary && l != kNegInf) {
      cand_.push_back({i, l, static_cast<float>(FastExp(l - m) / z), static_cast<float>(b)});
    }
  }
  cand_all_ = false;
  const auto first_boundary = std::partition(
      cand_.begin(), cand_.end(), [boundary](const Candidate& c) { return c.key < boundary; });
  const std::span<Candidate> edge(first_boundary, cand_.end());
  const size_t keep =
      SortPrefixUntil(edge, ByLogit, [&](double cum) { return above + cum >= p; });
  if (keep > 0) cand_.resize(static_cast<size_t>(first_boundary - cand_.begin()) + keep);
}

void Sampler::StageMinP(float p) {
  // llama.cpp compares logits: p_i >= p * p_max  ⇔  logit_i >= max + log p.
  if (cand_all_) {
    const float m = MaxOf(std::span<const float>(work_.data(), static_cast<size_t>(n_cur_)));
    MaterializeAbove(m + std::log(p));
    return;
  }
  float m = kNegInf;
  for (const Candidate& c : cand_) m = std::max(m, c.logit);
  const float threshold = m + std::log(p);
  std::erase_if(cand_, [threshold](const Candidate& c) { return c.logit < threshold; });
}

int32_t Sampler::DrawFromCandidates(float inv_temp, float* p_drawn) {
  if (cand_.empty()) return ArgMaxLowest({work_.data(), static_cast<size_t>(n_cur_)});
  float m = kNegInf;
  for (const Candidate& c : cand_) m = std::max(m, c.logit);
  double sum = 0.0;
  for (Candidate& c : cand_) {
    c.p = FastExp((c.logit - m) * inv_temp);
    sum += c.p;
  }
  const double r = NextUniform() * sum;
  double acc = 0.0;
  size_t pick = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    if (cand_[i].p > 0.0f) pick = i;  // fallback if rounding leaves r past the end
    acc += cand_[i].p;
    if (r < acc) {
      pick = i;
      break;
    }
  }
  if (p_drawn != nullptr) *p_drawn = static_cast<float>(cand_[pick].p / sum);
  return cand_[pick].id;
}

int32_t Sampler::DrawDense(float inv_temp) {
  // Every token is a candidate (no truncation): draw straight from the
  // logits. Pass 1 stores exp values and 16-token block sums; the walk then
  // skips whole blocks, so its serial part is n/16 additions.
  const size_t n = static_cast<size_t>(n_cur_);
  const size_t n_blocks = (n + kLanes - 1) / kLanes;
  if (prob_.size() < static_cast<size_t>(n_vocab_)) prob_.resize(n_vocab_);
  if (block_sum_.size() < n_blocks) block_sum_.resize((n_vocab_ + kLanes - 1) / kLanes);
  const float m = MaxOf(std::span<const float>(work_.data(), n));
  sampler_internal::ExpWithBlockSums(std::span<const float>(work_.data(), n), m, inv_temp,
                                     prob_.data(), block_sum_.data());
  const float* pr = prob_.data();
  double total = 0.0;
  for (size_t b = 0; b < n_blocks; ++b) total += block_sum_[b];
  const double r = NextUniform() * total;
  double acc = 0.0;
  for (size_t b = 0; b < n_blocks; ++b) {
    if (r >= acc + block_sum_[b] && b + 1 < n_blocks) {
      acc += block_sum_[b];
      continue;
    }
    const size_t end = std::min(n, (b + 1) * kLanes);
    size_t last = b * kLanes;
    for (size_t j = b * kLanes; j < end; ++j) {
      if (pr[j] > 0.0f) last = j;
      acc += pr[j];
      if (r < acc) return static_cast<int32_t>(j);
    }
    if (pr[last] > 0.0f) return static_cast<int32_t>(last);  // rounding at the block's end
    break;
  }
  return ArgMaxLowest(std::span<const float>(work_.data(), n));
}

int32_t Sampler::SampleMirostat() {
  const size_t n = static_cast<size_t>(n_cur_);
  const std::span<float> w(work_.data(), n);
  // Temperature first (llama.cpp's mirostat chains are temp → mirostat),
  // relative to the max so huge logits cannot overflow when divided.
  const float inv_temp = 1.0f / config_.temperature;
  const float m = MaxOf(w);
  for (float& l : w) l = (l - m) * inv_temp;  // -inf stays -inf; the max becomes 0
  const float lse = std::log(SumExp(w, 0.0f, 1.0f));

  if (config_.mirostat == 2) {
    // Keep tokens whose surprise -log2 p is at most mu:
    // log p = l - lse >= -mu ln2  ⇔  l >= lse - mu ln2. Always keep the best.
    MaterializeAbove(lse - mirostat_mu_ * kLn2);
    if (cand_.empty()) {
      const int32_t best = ArgMaxLowest(w);
      cand_.push_back({best, w[best], 0.0f, 0.0f});
    }
  } else {
    // v1: estimate the Zipf exponent s from the top m probabilities, then the
    // k that makes the expected surprise mu, and sample from the top k.
    SelectTopK(w, std::min(kMirostatM, n), cand_);
    double sum_ti_bi = 0.0;
    double sum_ti_sq = 0.0;
    for (size_t i = 0; i + 1 < cand_.size() && i + 1 < kMirostatM; ++i) {
      const double t_i = std::log(static_cast<double>(i + 2) / static_cast<double>(i + 1));
      const double b_i = static_cast<double>(cand_[i].logit) - cand_[i + 1].logit;  // log(p_i/p_i+1)
      sum_ti_bi += t_i * b_i;
      sum_ti_sq += t_i * t_i;
    }
    const double s_hat = sum_ti_bi / sum_ti_sq;
    const double eps_hat = s_hat - 1.0;
    const double k = std::pow(eps_hat * std::pow(2.0, mirostat_mu_) /
                                  (1.0 - std::pow(static_cast<double>(n), -eps_hat)),
                              1.0 / s_hat);
    // Degenerate fits (flat or one-token distributions) give NaN/inf: clamp,
    // since converting those to int is undefined.
    size_t kk = 1;
    if (k >= static_cast<double>(n)) {
      kk = n;
    } else if (k >= 1.0) {
      kk = static_cast<size_t>(k);
    }
    if (kk <= cand_.size()) {
      cand_.resize(kk);
    } else if (kk <= n / 8) {
      SelectTopK(w, kk, cand_);
    } else {
      MaterializeAbove(kNegInf);
      if (cand_.size() > kk) {
        std::nth_element(cand_.begin(), cand_.begin() + (kk - 1), cand_.end(), ByLogit);
        cand_.resize(kk);
      }
    }
  }
  float p = 1.0f;
  const int32_t token = DrawFromCandidates(1.0f, &p);
  pending_token_ = token;
  pending_surprise_ = -std::log2(p);
  return token;
}

}  // namespace llmesh::engine
