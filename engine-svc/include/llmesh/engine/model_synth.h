// Deterministic random-weight models of real shapes (`llmesh synth`), for
// benchmarks and tests without downloading weights: norm weights 1, every
// other weight N(0, 0.02) from a seeded generator, a real vocabulary copied
// from another GGUF. Written tensor by tensor, a group of rows at a time, so
// a multi-GB model never sits in memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/engine/hparams.h"
#include "llmesh/engine/model_quantize.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::engine {

struct SynthShape {
  std::string name;
  Arch arch = Arch::kLlama;
  int64_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_ctx = 0;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied_output = false;
  // Llama 3.1-style rope scaling (factor 0 = none).
  float rope_scaling_factor = 0.0f;
  float rope_low_freq_factor = 1.0f, rope_high_freq_factor = 4.0f;
  int64_t rope_orig_ctx = 8192;
  // The newer families' extras (the family's own traits add q/k norms,
  // post-norms and fused projections; family.h):
  int64_t head_dim = 0;                // 0: n_embd / n_head
  int64_t n_swa = 0;                   // sliding window (0 = none)
  int64_t swa_pattern = 0;             // written when set
  float rope_freq_base_swa = 0.0f;     // written when set
  float attn_softcap = 0.0f, final_softcap = 0.0f;
  float embedding_scale = 0.0f, residual_scale = 0.0f, attention_scale = 0.0f, logit_scale = 0.0f;
  int64_t longrope_orig_ctx = 0;       // phi3 LongRoPE factor tensors (0 = none)
  // The model's real vocabulary size: a smaller --vocab-from vocabulary is
  // padded with control tokens up to it (0: the vocabulary's own size).
  int64_t n_vocab = 0;
};

// tinyllama-1.1b, llama3.2-1b, llama2-7b, qwen2-0.5b, smollm-135m, and one or
// two real sizes of each newer family (qwen3-1.7b, gemma3-1b, ...).
absl::StatusOr<SynthShape> SynthShapeByName(std::string_view name);
std::vector<std::string> SynthShapeNames();

struct SynthOptions {
  SynthShape shape;
  std::optional<Arch> arch;  // overrides shape.arch (qwen2 adds QKV biases)
  gguf::GgmlType type = gguf::GgmlType::kF32;
  MixSize size = MixSize::kDefault;       // with `type`, the file type (quant_mix.h)
  bool pure = false;                      // see ChooseTensorType
  const gguf::GgufFile* vocab = nullptr;  // tokenizer.* keys copied, n_vocab from it
  int64_t n_vocab = 0;                    // used only without a vocab (no tokenizer keys then)
  uint64_t seed = 42;
  int n_threads = 0;
  ProgressFn progress;
};

absl::Status SynthesizeModel(const SynthOptions& opts, const std::string& out_path);

}  // namespace llmesh::engine
