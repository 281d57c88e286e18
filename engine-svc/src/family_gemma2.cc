// gemma2: embeddings scaled by sqrt(n_embd); every sublayer wrapped in a pre-
// and a post-norm (the converter folds Gemma's (1 + w) into the weights);
// GELU(tanh) gate; attention scores and final logits soft-capped with tanh;
// sliding-window attention on the even layers.
//
//   x = embd * sqrt(n_embd)
//   a = attention(rms_norm(x) * attn_norm)   scores = 50 tanh(q.k * scale / 50)
//   x += rms_norm(a) * post_attention_norm
//   f = (gelu(h @ Wgate) * (h @ Wup)) @ Wdown,  h = rms_norm(x) * ffn_norm
//   x += rms_norm(f) * post_ffw_norm
//   logits = 30 tanh(logits / 30)
#include <cmath>

#include "families.h"

namespace llmesh::engine::internal {
namespace {

absl::Status ReadGemma2(const gguf::GgufFile& f, const std::string& arch, ModelParams& hp) {
  // llama.cpp's defaults when the file leaves the caps out.
  if (f.Find(arch + ".attn_logit_softcapping") == nullptr) hp.f_attn_softcap = 50.0f;
  if (f.Find(arch + ".final_logit_softcapping") == nullptr) hp.f_final_softcap = 30.0f;
  hp.swa_layers = SwaPattern(hp.n_layer, 2);
  hp.f_attention_scale = GemmaQueryScale(hp, 46);
  return absl::OkStatus();
}

}  // namespace

float GemmaQueryScale(const ModelParams& hp, int64_t n_layer_27b) {
  const int64_t d = hp.n_layer == n_layer_27b ? hp.n_embd / hp.n_head : hp.n_embd_head_k;
  return 1.0f / std::sqrt(static_cast<float>(d));
}

const Family& Gemma2Family() {
  static const Family f{.arch = Arch::kGemma2,
                        .name = "gemma2",
                        .example = "Gemma 2 2B/9B/27B",
                        .rope_type = RopeType::kNeox,
                        .post_norms = true,
                        .activation = FfnActivation::kGeluTanh,
                        .embd_scale_sqrt = true,
                        .read_params = &ReadGemma2};
  return f;
}

}  // namespace llmesh::engine::internal
