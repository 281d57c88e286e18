// The scalar reference forward pass for llama/qwen2: one token at a time, one
// sequence, every weight dequantized to float up front, plain loops in the
// style of llama2.c's run.c. Slow and obviously correct; the fast batched
// path is tested against it. Meant for small models (it holds all weights as
// float32).
#pragma once

#include <cstdint>
#include <vector>

#include "llmesh/engine/model.h"

namespace llmesh::engine {

class LlamaReference {
 public:
  // n_ctx: positions the internal KV cache holds (0 = the model's context).
  explicit LlamaReference(const Model& model, int32_t n_ctx = 0);

  // Feeds `token` at position `pos` (0, 1, 2, ... in order; rewinding to an
  // earlier pos overwrites) and returns the logits (n_vocab).
  const std::vector<float>& Forward(int32_t token, int32_t pos);
  // The final-normed hidden state of the last Forward (n_embd).
  const std::vector<float>& hidden() const { return s_.xn; }

 private:
  struct Weights {
    std::vector<float> token_embd;    // (n_vocab, n_embd)
    std::vector<float> attn_norm;     // (n_layer, n_embd)
    std::vector<float> wq;            // (n_layer, n_q, n_embd)
    std::vector<float> wk;            // (n_layer, n_kv_k, n_embd)
    std::vector<float> wv;            // (n_layer, n_kv_v, n_embd)
    std::vector<float> bq, bk, bv;    // (n_layer, n_q|n_kv_k|n_kv_v) or empty
    std::vector<float> wo;            // (n_layer, n_embd, n_head*hd_v)
    std::vector<float> ffn_norm;      // (n_layer, n_embd)
    std::vector<float> w1;            // (n_layer, n_ff, n_embd) gate
    std::vector<float> w3;            // (n_layer, n_ff, n_embd) up
    std::vector<float> w2;            // (n_layer, n_embd, n_ff) down
    std::vector<float> output_norm;   // (n_embd)
    std::vector<float> output;        // (n_vocab, n_embd)
    std::vector<float> rope_factors;  // (n_rot/2) or empty
  };
  struct RunState {
    std::vector<float> x;            // (n_embd) residual stream
    std::vector<float> xb;           // (n_embd) normed
    std::vector<float> xb2;          // (n_embd)
    std::vector<float> q;            // (n_q)
    std::vector<float> k;            // (n_kv_k)
    std::vector<float> v;            // (n_kv_v)
    std::vector<float> att_out;      // (n_head*hd_v)
    std::vector<float> hb;           // (n_ff)
    std::vector<float> hb2;          // (n_ff)
    std::vector<float> att;          // (n_ctx) scores of one head
    std::vector<float> xn;           // (n_embd) final normed hidden
    std::vector<float> logits;       // (n_vocab)
    std::vector<float> key_cache;    // (n_layer, n_ctx, n_kv_k)
    std::vector<float> value_cache;  // (n_layer, n_ctx, n_kv_v)
  };

  ModelParams p_;
  int32_t n_ctx_;
  Weights w_;
  RunState s_;
};

}  // namespace llmesh::engine
