// mistral3: llama's layer with YaRN rope and, when attention.temperature_scale
// is set, llama4's position-dependent query temperature after rope:
//   q *= 1 + scale * log(floor(pos / original_context_length) + 1)
// Mistral Small 3.x / Magistral / Devstral text decoders.
#include "families.h"

namespace llmesh::engine::internal {
namespace {

absl::Status ReadMistral3(const gguf::GgufFile&, const std::string&, ModelParams& hp) {
  if (hp.f_attn_temp_scale != 0.0f && hp.n_attn_temp_floor_scale == 0) {
    hp.n_attn_temp_floor_scale = hp.n_ctx_orig_yarn;
  }
  return absl::OkStatus();
}

}  // namespace

const Family& Mistral3Family() {
  static const Family f{.arch = Arch::kMistral3,
                        .name = "mistral3",
                        .example = "Mistral Small 3.1/3.2, Magistral Small, Devstral Small",
                        .rope_type = RopeType::kNorm,
                        .read_params = &ReadMistral3};
  return f;
}

}  // namespace llmesh::engine::internal
