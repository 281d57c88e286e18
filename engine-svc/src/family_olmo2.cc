// olmo2 (also OLMo 3): no pre-norms — the projections read the residual
// stream itself — with an RMS norm after each sublayer, and q/k norms over
// the whole projection width (all heads together). OLMo 3 adds sliding
// windows (3 local, 1 global) where only the global layers use YaRN; the
// local ones rotate plainly.
//
//   q, k, v = x @ Wq, Wk, Wv;  q = rms_norm(q) * q_norm (n_head*hd wide), k likewise
//   q, k = rope_neox(q, k)     (YaRN on global layers when the file scales)
//   x += rms_norm(attention(q, k, v) @ Wo) * post_attention_norm
//   x += rms_norm(swiglu(x)) * post_ffw_norm
#include "families.h"

namespace llmesh::engine::internal {
namespace {

absl::Status ReadOlmo2(const gguf::GgufFile& f, const std::string& arch, ModelParams& hp) {
  if (hp.n_swa <= 0) return absl::OkStatus();
  auto period = ReadSwaPeriod(f, arch, 4);
  if (!period.ok()) return period.status();
  hp.swa_layers = SwaPattern(hp.n_layer, *period);
  hp.rope_freq_scale_swa = 1.0f;  // plain rope on the local layers
  return absl::OkStatus();
}

}  // namespace

const Family& Olmo2Family() {
  static const Family f{.arch = Arch::kOlmo2,
                        .name = "olmo2",
                        .example = "OLMo 2 1B/7B/13B/32B, OLMo 3 7B/32B",
                        .rope_type = RopeType::kNeox,
                        .pre_norms = false,
                        .post_norms = true,
                        .qk_norm = QkNorm::kFullWidth,
                        .read_params = &ReadOlmo2};
  return f;
}

}  // namespace llmesh::engine::internal
