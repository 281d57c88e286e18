// exaone4: OLMo 2's post-norm-only layer with per-head q/k norms. The 32B
// model (64 layers) slides a 4096 window on 3 layers of 4 and rotates only
// those; the global layers are NoPE. EXAONE 4.0 1.2B/32B.
#include "families.h"

namespace llmesh::engine::internal {
namespace {

absl::Status ReadExaone4(const gguf::GgufFile& f, const std::string& arch, ModelParams& hp) {
  if (hp.n_layer != 64) {
    hp.n_swa = 0;
    return absl::OkStatus();
  }
  if (f.Find(arch + ".attention.sliding_window") == nullptr) hp.n_swa = 4096;
  hp.swa_layers = SwaPattern(hp.n_layer, 4);
  hp.rope_layers = hp.swa_layers;
  return absl::OkStatus();
}

}  // namespace

const Family& Exaone4Family() {
  static const Family f{.arch = Arch::kExaone4,
                        .name = "exaone4",
                        .example = "EXAONE 4.0 1.2B/32B",
                        .rope_type = RopeType::kNeox,
                        .pre_norms = false,
                        .post_norms = true,
                        .qk_norm = QkNorm::kPerHead,
                        .read_params = &ReadExaone4};
  return f;
}

}  // namespace llmesh::engine::internal
