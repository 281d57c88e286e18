// mistral3: llama's layer with YaRN rope and, when attention.temperature_scale
// is set, llama4's position-dependent query temperature after rope:
//   q *= 1 + scale * log(floor(pos / original_context_length) + 1)
// (the length defaults to the original context in hparams.cc, for any family)
// Mistral Small 3.x / Magistral / Devstral text decoders.
#include "families.h"

namespace llmesh::engine::internal {

const Family& Mistral3Family() {
  static const Family f{.arch = Arch::kMistral3,
                        .name = "mistral3",
                        .example = "Mistral Small 3.1/3.2, Magistral Small, Devstral Small",
                        .rope_type = RopeType::kNorm};
  return f;
}

}  // namespace llmesh::engine::internal
