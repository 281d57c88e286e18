// The per-sequence sampler chain: logits in, one token out, the way
// llama.cpp's llama-sampling does it (same stages, same order, same formulas),
// written for the scheduler: each sequence owns one Sampler, with its own RNG,
// penalty window and mirostat state, so what it samples depends only on its
// own seed and its own logits, never on what else runs in the batch
// (reliability promise 8).
//
// Chain, in order:
//   processors (LogitProcessor: grammar masks, added later)
//   → logit bias → penalties (repetition / frequency / presence, windowed)
//   → greedy if temperature == 0
//   → top_k → typical → top_p → min_p → temperature → draw
// With mirostat 1 or 2 the stages after the penalties are temperature, then
// mirostat's own truncation and draw.
//
// Cost: O(n_vocab) simple passes per token (copy, max, exp-sum) plus work
// proportional to the candidates kept; no full sort of the vocabulary, and
// after the first token no allocation (scratch lives in the Sampler).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llmesh::engine {

inline constexpr int32_t kMaxTopLogprobs = 20;  // OpenAI's limit

// Mirrors proto/llmesh/v1/common.proto SamplingParams, with the same defaults.
struct SamplingConfig {
  float temperature = 1.0f;         // [0, 100]; 0 = greedy (argmax, lowest id on ties)
  int32_t top_k = 0;                // >= 0; 0 = off
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float min_p = 0.0f;               // [0, 1]; 0 = off
  float typical_p = 1.0f;           // (0, 1]; 1 = off
  float repetition_penalty = 1.0f;  // >= 0; 1 = off
  float frequency_penalty = 0.0f;   // [-2, 2]
  float presence_penalty = 0.0f;    // [-2, 2]
  int32_t penalty_last_n = 64;      // >= -1; -1 = whole context, 0 = penalties off
  std::map<int32_t, float> logit_bias;  // token id → added to its logit
  int32_t mirostat = 0;             // 0 off, 1 v1, 2 v2
  float mirostat_tau = 5.0f;        // target surprise, bits; > 0 when mirostat is on
  float mirostat_eta = 0.1f;        // learning rate; > 0 when mirostat is on
  std::optional<uint64_t> seed;     // unset: drawn from std::random_device at Create
  int32_t n_top_logprobs = 0;       // [0, kMaxTopLogprobs]
  // Constrained decoding (grammar.h), at most one of them: a GBNF grammar, or
  // a JSON Schema as JSON text. Sampler::Create compiles it into a
  // GrammarConstraint processor.
  std::string grammar;
  std::string json_schema;
};

class TokenPieces;  // grammar.h: a model's vocabulary as bytes

// INVALID_ARGUMENT naming the field and its value for anything out of range
// (NaN/inf anywhere included), or for a grammar / JSON schema that does not
// compile (with its line:column or schema path). Requests are untrusted:
// call before Create.
absl::Status ValidateSamplingConfig(const SamplingConfig& config, int32_t n_vocab);

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct SampleResult {
  int32_t token = 0;
  // log_softmax of the model's raw logits at `token`: the distribution before
  // bias, penalties, truncation and temperature, as OpenAI reports it.
  float logprob = 0.0f;
  // The n_top_logprobs most likely tokens of that same raw distribution,
  // most likely first (ties: lowest id first). Inline: never allocates.
  absl::InlinedVector<TokenLogprob, kMaxTopLogprobs> top_logprobs;
};

// Extension point for constrained decoding (grammar / JSON schema): runs first
// on the sequence's copy of the logits and masks what may not come next
// (set to -inf). It sees generated tokens only, not the prompt.
class LogitProcessor {
 public:
  virtual ~LogitProcessor() = default;
  virtual void Apply(std::span<float> logits) = 0;
  virtual void Accept(int32_t token) = 0;
  virtual void Reset() = 0;
  virtual std::unique_ptr<LogitProcessor> Clone() const = 0;
};

class Sampler {
 public:
  // Validates (ValidateSamplingConfig) and builds a sampler for a vocabulary of
  // n_vocab tokens; an unset seed is drawn here, once, so Clone and Reset stay
  // deterministic from then on.
  static absl::StatusOr<std::unique_ptr<Sampler>> Create(const SamplingConfig& config,
                                                         int32_t n_vocab);
  // The same, for configs that may carry a grammar or JSON schema: it is
  // compiled here and attached as a GrammarConstraint over `vocab` (the
  // model's pieces, shared). FAILED_PRECONDITION if one is set and vocab is null.
  static absl::StatusOr<std::unique_ptr<Sampler>> Create(const SamplingConfig& config,
                                                         int32_t n_vocab,
                                                         std::shared_ptr<const TokenPieces> vocab);

  // Picks the next token from `logits` (n_vocab of them; extra entries are
  // ignored, missing ones are treated as absent). Advances only the RNG; the
  // scheduler then calls Accept with the token it keeps. NaN logits count as
  // -inf. If every candidate is masked to -inf, returns the lowest id.
  SampleResult Sample(std::span<const float> logits);

  // A generated token: enters the penalty window, advances the processors and,
  // if it is the token just sampled, updates mirostat's mu with its surprise.
  // Ids outside [0, n_vocab) are ignored.
  void Accept(int32_t token);
  // Prompt tokens: enter the penalty window only (as in llama.cpp, penalties
  // see the prompt; grammars and mirostat do not).
  void AcceptPrompt(std::span<const int32_t> tokens);

  // Back to the state right after Create: empty window, initial mu, processors
  // reset, RNG re-seeded with seed().
  void Reset();

  // A fork for choice `index` of an n > 1 request: same config, window, mu and
  // processor state, RNG seeded with seed() + index. Fork 0 therefore draws
  // exactly what this sampler would draw from now on if it were fresh.
  std::unique_ptr<Sampler> Clone(uint64_t index) const;

  // Appended to the processor stage (applied in the order added).
  void AddProcessor(std::unique_ptr<LogitProcessor> processor);

  const SamplingConfig& config() const { return config_; }
  int32_t n_vocab() const { return n_vocab_; }
  uint64_t seed() const { return seed_; }            // the resolved seed
  float mirostat_mu() const { return mirostat_mu_; }  // for tests and metrics

  // The logits after processors, bias and penalties for the last Sample call
  // (test hook: lets tests check the penalty formulas exactly). Mirostat
  // scales them by 1/temperature in place; the chain path leaves them as is.
  std::span<const float> last_adjusted_logits() const {
    return {work_.data(), static_cast<size_t>(n_cur_)};
  }

  // A candidate token during truncation (public for the internal helpers).
  struct Candidate {
    int32_t id;
    float logit;
    float p;    // probability within the current candidate set
    float key;  // stage-specific sort key (typical: |surprise - entropy|)
  };

 private:
  Sampler(const SamplingConfig& config, int32_t n_vocab, uint64_t seed);

  bool PenaltiesActive() const;
  void PushPenaltyToken(int32_t token);
  void ApplyBiasAndPenalties();
  double NextUniform();  // [0, 1) from rng_: std distributions differ by library

  // Stages over work_ (the adjusted logits) and cand_.
  int32_t SampleChain();
  int32_t SampleMirostat();
  void MaterializeAbove(float threshold);  // cand_ = {i : work_[i] >= threshold}
  void StageTopK(int32_t k);
  void StageTypical(float p);
  void StageTopP(float p);
  void StageMinP(float p);
  int32_t DrawFromCandidates(float inv_temp, float* p_drawn);
  int32_t DrawDense(float inv_temp);

  SamplingConfig config_;
  int32_t n_vocab_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<LogitProcessor>> processors_;

  // Penalty window: the last penalty_last_n accepted tokens (ring buffer; not
  // kept when the window is the whole context) and their counts. Sparse, so a
  // sequence costs O(window), not O(n_vocab).
  std::vector<int32_t> window_;  // grows to penalty_last_n, then wraps
  size_t window_head_ = 0;       // oldest entry once full
  absl::flat_hash_map<int32_t, int32_t> counts_;

  float mirostat_mu_ = 0.0f;
  int32_t pending_token_ = -1;     // last sampled token, for mirostat's update
  float pending_surprise_ = 0.0f;  // its surprise in bits

  // Scratch, sized on first use and reused.
  int32_t n_cur_ = 0;             // vocab size of the current Sample call
  std::vector<float> work_;       // (n_vocab) adjusted logits
  std::vector<float> prob_;       // (n_vocab) exp values for the dense draw
  std::vector<float> block_sum_;  // (n_vocab / 16) their per-block sums
  std::vector<Candidate> cand_;   // surviving candidates
  bool cand_all_ = true;          // cand_ not built yet: every token survives
};

}  // namespace llmesh::engine
