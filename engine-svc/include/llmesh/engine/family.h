// A model family: what its decoder layer adds to llama's, and the metadata
// only it reads. The forward passes (forward.h, decoder_reference.h) run one
// decoder graph whose optional steps these traits switch on, so a family is
// its traits plus a small reader, one file each (family_<name>.cc), listed in
// family_table.cc. Adding a family whose graph is built from the steps below
// is one new file and one table entry.
//
// The decoder layer, every optional step marked with the trait that enables it:
//
//   x = token_embd[t]  (* sqrt(n_embd): embd_scale_sqrt; * f_embedding_scale)
//   per layer il:
//     h = pre_norms ? rms_norm(x) * attn_norm : x
//     q, k, v = h @ Wq, Wk, Wv  (+ biases; or one fused attn_qkv, split by rows)
//     q, k = rms_norm per head or over the full width * q_norm, k_norm   (qk_norm)
//     q, k = rope(q, k) unless layer il is NoPE (rope_layers)
//     q *= attention temperature at pos                     (f_attn_temp_scale)
//     s = q k^T * kq_scale; s = cap * tanh(s / cap)          (f_attn_softcap)
//     s masked to the last n_swa positions on sliding layers  (swa_layers)
//     a = softmax(s) v
//     a = rms_norm(a) * attn_sub_norm                        (sub_norms)
//     a = a @ Wo
//     a = rms_norm(a) * post_attention_norm                  (post_norms)
//     x += a (* f_residual_scale)
//     h = pre_norms ? rms_norm(x) * ffn_norm : x
//     f = (act(h @ Wgate) * (h @ Wup)) @ Wdown  act: SiLU or GELU(tanh) (activation;
//         Wgate/Wup may be one fused ffn_up of 2*n_ff rows, gate first;
//         rms_norm(...) * ffn_sub_norm before Wdown           (sub_norms))
//     f = rms_norm(f) * post_ffw_norm                        (post_norms)
//     x += f (* f_residual_scale)
//   logits = (rms_norm(x) * output_norm) @ output
//
// In any family, a matrix W may come with a one-element W.scale tensor
// (BitNet's per-tensor scale beside {-1, 0, 1} weights): its product is
// multiplied by it, before any bias.
//            / f_logit_scale; cap * tanh(logits / cap)        (f_final_softcap)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/engine/hparams.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::engine {

enum class QkNorm {
  kNone,
  kPerHead,    // attn_q_norm / attn_k_norm are (head_dim), applied to each head
  kFullWidth,  // (n_head * head_dim) and (n_head_kv * head_dim): one norm over all heads
};

enum class FfnActivation { kSilu, kGeluTanh };

struct Family {
  Arch arch;
  std::string_view name;     // general.architecture
  std::string_view example;  // models people run, for `llmesh info` and the README
  RopeType rope_type;
  bool pre_norms = true;    // attn_norm / ffn_norm before each sublayer
  bool post_norms = false;  // post_attention_norm / post_ffw_norm on each sublayer's output
  QkNorm qk_norm = QkNorm::kNone;
  FfnActivation activation = FfnActivation::kSilu;
  bool qkv_bias = false;         // attn_{q,k,v}.bias are required
  bool embd_scale_sqrt = false;  // embeddings * sqrt(n_embd)
  bool sub_norms = false;        // attn_sub_norm before Wo, ffn_sub_norm before Wdown (BitNet)
  // The family's own metadata, read after the common keys; may set any field
  // of hp (sliding-window layers, NoPE layers, defaults llama.cpp hard-codes).
  absl::Status (*read_params)(const gguf::GgufFile& f, const std::string& arch,
                              ModelParams& hp) = nullptr;
};

// Elements of attn_q_norm / attn_k_norm: one head's, or the whole projection
// (proj_width = n_head * head_dim for q, n_head_kv * head_dim for k).
inline int64_t QkNormWidth(const Family& f, int64_t head_dim, int64_t proj_width) {
  return f.qk_norm == QkNorm::kPerHead ? head_dim : proj_width;
}

// The family whose general.architecture is `name`, or nullptr.
const Family* FindFamily(std::string_view name);
const Family& FamilyOf(Arch arch);
std::vector<std::string_view> FamilyNames();

// The features a model's hyperparameters switch on, in words (llmesh info).
std::string DescribeFeatures(const ModelParams& hp);

}  // namespace llmesh::engine
