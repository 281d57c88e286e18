// phi3: llama's layer with NEOX rope, the q/k/v projections fused in one
// attn_qkv (rows q | k | v) and the gate and up projections in one ffn_up
// (rows gate | up) — bound as row ranges of the fused matrix, so the forward
// pass sees separate projections at no cost. LongRoPE: rope_factors_short
// divide the frequencies while the context fits the original length,
// rope_factors_long beyond it; rope.scaling.attn_factor scales cos/sin.
// The sliding_window key real files carry is ignored, as llama.cpp does.
#include "families.h"

namespace llmesh::engine::internal {
namespace {

absl::Status ReadPhi3(const gguf::GgufFile&, const std::string&, ModelParams& hp) {
  hp.n_swa = 0;
  hp.swa_layers.clear();
  return absl::OkStatus();
}

}  // namespace

const Family& Phi3Family() {
  static const Family f{.arch = Arch::kPhi3,
                        .name = "phi3",
                        .example = "Phi-3/3.5-mini, Phi-4-mini, Phi-4 (14B)",
                        .rope_type = RopeType::kNeox,
                        .read_params = &ReadPhi3};
  return f;
}

}  // namespace llmesh::engine::internal
