// smollm3: llama's layer, but every 4th layer (3, 7, 11, ...) attends without
// positional encoding (NoPE): its q and k are not rotated.
#include "families.h"

namespace llmesh::engine::internal {
namespace {

constexpr int64_t kNoRopeLayerStep = 4;  // llama.cpp's n_no_rope_layer_step

absl::Status ReadSmolLM3(const gguf::GgufFile&, const std::string&, ModelParams& hp) {
  hp.rope_layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t il = 0; il < hp.n_layer; ++il) hp.rope_layers[il] = (il + 1) % kNoRopeLayerStep != 0;
  return absl::OkStatus();
}

}  // namespace

const Family& SmolLM3Family() {
  static const Family f{.arch = Arch::kSmolLM3,
                        .name = "smollm3",
                        .example = "SmolLM3 3B",
                        .rope_type = RopeType::kNorm,
                        .read_params = &ReadSmolLM3};
  return f;
}

}  // namespace llmesh::engine::internal
