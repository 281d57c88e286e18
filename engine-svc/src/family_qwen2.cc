// qwen2: llama with biases on the q, k and v projections and NEOX rope (the
// HF layout, unpermuted). Qwen2, Qwen2.5 and their coder/math variants.
#include "families.h"

namespace llmesh::engine::internal {

const Family& Qwen2Family() {
  static const Family f{.arch = Arch::kQwen2,
                        .name = "qwen2",
                        .example = "Qwen2, Qwen2.5 (0.5B-72B), Qwen2.5-Coder",
                        .rope_type = RopeType::kNeox,
                        .qkv_bias = true};
  return f;
}

}  // namespace llmesh::engine::internal
