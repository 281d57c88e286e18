// gemma3: gemma2's layer with per-head q/k norms instead of the attention
// soft-cap; sliding-window layers in a repeating pattern (5 local, 1 global on
// the released models) with their own rope base (10000, unscaled) while the
// global layers use the file's base and scaling (1e6, linear x8 on 4B+).
// The final logits are soft-capped only by files without sliding windows.
//
//   x = embd * sqrt(n_embd)
//   q[head], k[head] = rms_norm per head * q_norm, k_norm;  rope(base_l, scale_l)
//   x += rms_norm(attention) * post_attention_norm
//   x += rms_norm(geglu(rms_norm(x) * ffn_norm)) * post_ffw_norm
#include "families.h"

namespace llmesh::engine::internal {
namespace {

absl::Status ReadGemma3(const gguf::GgufFile& f, const std::string& arch, ModelParams& hp) {
  auto period = ReadSwaPeriod(f, arch, 6);
  if (!period.ok()) return period.status();
  hp.swa_layers = SwaPattern(hp.n_layer, *period);
  if (f.Find(arch + ".rope.freq_base_swa") == nullptr) hp.rope_freq_base_swa = 10000.0f;
  hp.rope_freq_scale_swa = 1.0f;
  hp.f_attn_softcap = 0.0f;
  if (hp.n_swa > 0) hp.f_final_softcap = 0.0f;
  hp.f_attention_scale = GemmaQueryScale(hp, 62);
  return absl::OkStatus();
}

}  // namespace

const Family& Gemma3Family() {
  static const Family f{.arch = Arch::kGemma3,
                        .name = "gemma3",
                        .example = "Gemma 3 270M/1B/4B/12B/27B (text)",
                        .rope_type = RopeType::kNeox,
                        .post_norms = true,
                        .qk_norm = QkNorm::kPerHead,
                        .activation = FfnActivation::kGeluTanh,
                        .embd_scale_sqrt = true,
                        .read_params = &ReadGemma3};
  return f;
}

}  // namespace llmesh::engine::internal
