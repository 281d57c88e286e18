// llama: the base decoder layer (family.h) with none of the optional steps.
// Llama 2/3/3.x, TinyLlama, Mistral 7B, SmolLM/SmolLM2 and most fine-tunes.
// Q/K rows are permuted by the converter for NORM rope; Llama 3.1+ carry
// rope_freqs.weight (or the llama3 scaling keys, hparams.cc).
#include "families.h"

namespace llmesh::engine::internal {

const Family& LlamaFamily() {
  static const Family f{.arch = Arch::kLlama,
                        .name = "llama",
                        .example = "Llama 2/3/3.1/3.2, TinyLlama, Mistral 7B, SmolLM2",
                        .rope_type = RopeType::kNorm};
  return f;
}

}  // namespace llmesh::engine::internal
