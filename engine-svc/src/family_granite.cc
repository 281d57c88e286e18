// granite: llama's layer with four scalars (muP): embeddings multiplied by
// embedding_scale, each sublayer's output by residual_scale before it joins
// the stream, attention scores by attention.scale (instead of 1/sqrt(hd)),
// and the logits divided by logit_scale. Rope can be switched off per file
// (rope.scaling.finetuned = false). Granite 3.x dense models.
#include "families.h"

namespace llmesh::engine::internal {
namespace {

absl::Status ReadGranite(const gguf::GgufFile& f, const std::string& arch, ModelParams& hp) {
  auto finetuned = f.GetBool(arch + ".rope.scaling.finetuned");
  if (finetuned.ok() && !*finetuned) hp.rope_layers.assign(static_cast<size_t>(hp.n_layer), 0);
  return absl::OkStatus();
}

}  // namespace

const Family& GraniteFamily() {
  static const Family f{.arch = Arch::kGranite,
                        .name = "granite",
                        .example = "Granite 3.0/3.1/3.2/3.3 2B/8B",
                        .rope_type = RopeType::kNorm,
                        .read_params = &ReadGranite};
  return f;
}

}  // namespace llmesh::engine::internal
