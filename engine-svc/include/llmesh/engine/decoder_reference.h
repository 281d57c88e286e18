// The scalar reference forward pass for every decoder family (family.h): one
// token at a time, one sequence, every weight dequantized to float up front,
// plain loops in the style of llama2.c's run.c. Slow and obviously correct;
// the fast batched path (forward.h) is tested against it. Meant for small
// models (it holds all weights as float32). It shares only the RoPE angle
// computation (rope.h, itself tested against hand-computed angles) with the
// fast path.
#pragma once

#include <cstdint>
#include <vector>

#include "llmesh/engine/model.h"

namespace llmesh::engine {

class DecoderReference {
 public:
  // n_ctx: positions the internal KV cache holds (0 = the model's context).
  explicit DecoderReference(const Model& model, int32_t n_ctx = 0);

  // Feeds `token` at position `pos` (0, 1, 2, ... in order; rewinding to an
  // earlier pos overwrites) and returns the logits (n_vocab).
  const std::vector<float>& Forward(int32_t token, int32_t pos);
  // The final-normed hidden state of the last Forward (n_embd).
  const std::vector<float>& hidden() const { return s_.xn; }

 private:
  struct Layer {                        // empty vectors: the family has no such step
    std::vector<float> attn_norm;       // (n_embd)
    std::vector<float> wq, wk, wv;      // (n_q | n_kv_k | n_kv_v, n_embd)
    std::vector<float> bq, bk, bv;      // (n_q | n_kv_k | n_kv_v)
    std::vector<float> q_norm, k_norm;  // (hd) per head, or (n_q | n_kv_k)
    std::vector<float> attn_sub_norm;   // (n_head*hd_v)
    std::vector<float> wo;              // (n_embd, n_head*hd_v), wq..w2 times their W.scale
    std::vector<float> bo;              // (n_embd)
    std::vector<float> post_attn_norm;  // (n_embd)
    std::vector<float> ffn_norm;        // (n_embd)
    std::vector<float> w1, w3;          // (n_ff, n_embd) gate, up
    std::vector<float> ffn_sub_norm;    // (n_ff)
    std::vector<float> w2;              // (n_embd, n_ff) down
    std::vector<float> post_ffn_norm;   // (n_embd)
    RopeParams rope;                    // this layer's rotation
    std::vector<float> rope_factors;    // (n_rot/2) the divisors rope points at, or empty
  };
  struct RunState {
    std::vector<float> x;            // (n_embd) residual stream
    std::vector<float> xb;           // (n_embd) normed
    std::vector<float> xb2;          // (n_embd)
    std::vector<float> q;            // (n_q)
    std::vector<float> att_out;      // (n_head*hd_v)
    std::vector<float> hb;           // (n_ff)
    std::vector<float> hb2;          // (n_ff)
    std::vector<float> att;          // (n_ctx) scores of one head
    std::vector<float> cs;           // (n_rot) cos/sin of this position
    std::vector<float> xn;           // (n_embd) final normed hidden
    std::vector<float> logits;       // (n_vocab)
    std::vector<float> key_cache;    // (n_layer, n_ctx, n_kv_k)
    std::vector<float> value_cache;  // (n_layer, n_ctx, n_kv_v)
  };

  ModelParams p_;
  Family fam_;
  int32_t n_ctx_;
  std::vector<float> token_embd_;   // (n_vocab, n_embd)
  std::vector<Layer> layers_;       // (n_layer)
  std::vector<float> output_norm_;  // (n_embd)
  std::vector<float> output_;       // (n_vocab, n_embd)
  RunState s_;
};

}  // namespace llmesh::engine
