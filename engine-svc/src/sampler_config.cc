// Validation of SamplingConfig: requests are untrusted, so every field is
// range-checked here once and the sampler itself can assume sane values.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "llmesh/engine/grammar.h"
#include "llmesh/engine/sampler.h"

namespace llmesh::engine {

// The numeric checks alone (Sampler::Create runs them, then compiles the
// grammar once itself).
absl::Status ValidateSamplingNumbers(const SamplingConfig& c, int32_t n_vocab);

namespace {

absl::Status Bad(const char* field, float value, const char* rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("sampling: ", field, " must be ", rule, ", got ", value));
}

absl::Status BadInt(const char* field, int64_t value, const char* rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("sampling: ", field, " must be ", rule, ", got ", value));
}

}  // namespace

absl::Status ValidateSamplingConfig(const SamplingConfig& c, int32_t n_vocab) {
  if (absl::Status s = ValidateSamplingNumbers(c, n_vocab); !s.ok()) return s;
  // Compiled here only to report errors up front (Submit); Create compiles
  // the one it keeps.
  return CompileSamplingGrammar(c).status();
}

absl::Status ValidateSamplingNumbers(const SamplingConfig& c, int32_t n_vocab) {
  if (n_vocab <= 0) return BadInt("n_vocab", n_vocab, "> 0");
  // Finite first, so the range checks below never see NaN (which compares
  // false against every bound and would slip through).
  const struct {
    const char* name;
    float value;
  } floats[] = {
      {"temperature", c.temperature},
      {"top_p", c.top_p},
      {"min_p", c.min_p},
      {"typical_p", c.typical_p},
      {"repetition_penalty", c.repetition_penalty},
      {"frequency_penalty", c.frequency_penalty},
      {"presence_penalty", c.presence_penalty},
      {"mirostat_tau", c.mirostat_tau},
      {"mirostat_eta", c.mirostat_eta},
  };
  for (const auto& f : floats) {
    if (!std::isfinite(f.value)) return Bad(f.name, f.value, "finite");
  }
  if (c.temperature < 0.0f || c.temperature > 100.0f) {
    return Bad("temperature", c.temperature, "in [0, 100]");
  }
  if (c.top_k < 0) return BadInt("top_k", c.top_k, ">= 0");
  if (!(c.top_p > 0.0f && c.top_p <= 1.0f)) return Bad("top_p", c.top_p, "in (0, 1]");
  if (c.min_p < 0.0f || c.min_p > 1.0f) return Bad("min_p", c.min_p, "in [0, 1]");
  if (!(c.typical_p > 0.0f && c.typical_p <= 1.0f)) {
    return Bad("typical_p", c.typical_p, "in (0, 1]");
  }
  if (c.repetition_penalty < 0.0f) {
    return Bad("repetition_penalty", c.repetition_penalty, ">= 0");
  }
  if (c.frequency_penalty < -2.0f || c.frequency_penalty > 2.0f) {
    return Bad("frequency_penalty", c.frequency_penalty, "in [-2, 2]");
  }
  if (c.presence_penalty < -2.0f || c.presence_penalty > 2.0f) {
    return Bad("presence_penalty", c.presence_penalty, "in [-2, 2]");
  }
  if (c.penalty_last_n < -1) return BadInt("penalty_last_n", c.penalty_last_n, ">= -1");
  if (c.mirostat < 0 || c.mirostat > 2) return BadInt("mirostat", c.mirostat, "0, 1 or 2");
  if (c.mirostat != 0) {
    if (c.mirostat_tau <= 0.0f) return Bad("mirostat_tau", c.mirostat_tau, "> 0");
    if (c.mirostat_eta <= 0.0f) return Bad("mirostat_eta", c.mirostat_eta, "> 0");
  }
  for (const auto& [id, bias] : c.logit_bias) {
    if (id < 0 || id >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sampling: logit_bias token id must be in [0, ", n_vocab, "), got ", id));
    }
    if (!std::isfinite(bias)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling: logit_bias[", id, "] must be finite, got ", bias));
    }
  }
  if (c.n_top_logprobs < 0 || c.n_top_logprobs > kMaxTopLogprobs) {
    return BadInt("n_top_logprobs", c.n_top_logprobs, "in [0, 20]");
  }
  return absl::OkStatus();
}

}  // namespace llmesh::engine
