// qwen3: qwen2 without the biases, plus an RMS norm over each head of q and
// k (attn_q_norm / attn_k_norm, head_dim wide) before rope. head_dim is set
// explicitly (128 on every size), so Q is wider than n_embd on the small
// models: Qwen3-0.6B has n_embd 1024 and 16 heads of 128.
//
//   h = rms_norm(x) * attn_norm
//   q, k, v = h @ Wq, Wk, Wv
//   q[head] = rms_norm(q[head]) * q_norm;  k[head] = rms_norm(k[head]) * k_norm
//   q, k = rope_neox(q, k);  x += attention(q, k, v) @ Wo
//   x += swiglu(rms_norm(x) * ffn_norm)
#include "families.h"

namespace llmesh::engine::internal {

const Family& Qwen3Family() {
  static const Family f{.arch = Arch::kQwen3,
                        .name = "qwen3",
                        .example = "Qwen3 0.6B/1.7B/4B/8B/14B/32B",
                        .rope_type = RopeType::kNeox,
                        .qk_norm = QkNorm::kPerHead};
  return f;
}

}  // namespace llmesh::engine::internal
