// A loaded model: hyperparameters plus zero-copy views of every weight in the
// read-only mmap of its GGUF file (and, for Q4_0/Q8_0 matrices on AVX-512
// VNNI CPUs, a load-time interleaved copy: weight_pack.h). Immutable after Load, so one Model is
// shared by every forward context and thread.
//
// Tensor names and shapes follow llama.cpp (ne[0] is the input dimension):
//   token_embd.weight      (n_vocab, n_embd)      any type
//   output_norm.weight     (n_embd)               F32
//   output.weight          (n_vocab, n_embd)      absent => tied to token_embd
//   rope_freqs.weight      (n_rot/2)              optional, llama3 divisors
//   blk.L.attn_norm.weight (n_embd)               F32
//   blk.L.attn_q.weight    (n_head*hd_k, n_embd)   + attn_q.bias (qwen2)
//   blk.L.attn_k.weight    (n_head_kv*hd_k, n_embd) + attn_k.bias (qwen2)
//   blk.L.attn_v.weight    (n_head_kv*hd_v, n_embd) + attn_v.bias (qwen2)
//   blk.L.attn_output.weight (n_embd, n_head*hd_v)
//   blk.L.ffn_norm.weight  (n_embd)               F32
//   blk.L.ffn_gate.weight  (n_ff, n_embd)
//   blk.L.ffn_up.weight    (n_ff, n_embd)
//   blk.L.ffn_down.weight  (n_embd, n_ff)
// and, where the family (family.h) has them:
//   blk.L.attn_qkv.weight  (n_q + n_k + n_v, n_embd) fused q | k | v (phi3)
//   blk.L.ffn_up.weight    (2 n_ff, n_embd)  fused gate | up when ffn_gate is absent
//   blk.L.attn_q_norm.weight, attn_k_norm.weight  (hd_k) per head, or full width
//   blk.L.post_attention_norm.weight, post_ffw_norm.weight (n_embd)
//   blk.L.attn_output.bias (n_embd)
//   rope_factors_short.weight, rope_factors_long.weight (n_rot/2) LongRoPE
//   blk.L.attn_sub_norm.weight (n_head*hd_v), blk.L.ffn_sub_norm.weight (n_ff)  BitNet
//   blk.L.<matrix>.scale   (1) F32, any family: the matrix's product times it
// (shapes written (rows, cols) = (ne[1], ne[0]))
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/engine/hparams.h"
#include "llmesh/engine/family.h"
#include "llmesh/engine/matmul.h"
#include "llmesh/engine/rope.h"
#include "llmesh/engine/weight_pack.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::engine {

// Per-tensor multipliers of the layer's matrix products (W.scale tensors;
// 1 where absent).
struct MatrixScales {
  float q = 1, k = 1, v = 1, o = 1, gate = 1, up = 1, down = 1;
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // (n_embd), null without pre-norms
  // Fused files give row ranges of their one matrix here.
  WeightView wq{}, wk{}, wv{}, wo{};
  const float* bq = nullptr;           // (n_head*hd_k) or null
  const float* bk = nullptr;           // (n_head_kv*hd_k) or null
  const float* bv = nullptr;           // (n_head_kv*hd_v) or null
  const float* bo = nullptr;           // (n_embd) or null
  const float* q_norm = nullptr;       // (hd_k) per head, or (n_head*hd_k); or null
  const float* k_norm = nullptr;       // (hd_k) per head, or (n_head_kv*hd_k); or null
  const float* attn_sub_norm = nullptr;   // (n_head*hd_v) before Wo, or null
  const float* post_attn_norm = nullptr;  // (n_embd) or null
  const float* ffn_norm = nullptr;     // (n_embd), null without pre-norms
  WeightView w_gate{}, w_up{}, w_down{};
  const float* ffn_sub_norm = nullptr;   // (n_ff) before Wdown, or null
  const float* post_ffn_norm = nullptr;  // (n_embd) or null
  MatrixScales scale;
};

class Model {
 public:
  // Maps and validates the file: hyperparameters, then every tensor's
  // presence, type and shape. Errors name the key or tensor at fault.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Model>> FromGguf(std::unique_ptr<gguf::GgufFile> file);

  const ModelParams& params() const { return hp_; }
  const Family& family() const { return FamilyOf(hp_.arch); }
  const gguf::GgufFile& file() const { return *file_; }

  const WeightView& tok_embd() const { return tok_embd_; }
  const WeightView& output() const { return output_; }  // == tok_embd when tied
  bool tied_output() const { return tied_output_; }
  const float* output_norm() const { return output_norm_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  // Per-pair RoPE frequency divisors (n_rot/2), or nullptr for none.
  const float* rope_freq_factors() const {
    return rope_freq_factors_.empty() ? nullptr : rope_freq_factors_.data();
  }

  // How layer il rotates q and k when a sequence may hold n_ctx positions
  // (LongRoPE switches factors past the original context). Meaningless for
  // a NoPE layer (params().uses_rope(il) false).
  RopeParams LayerRope(int64_t il, int32_t n_ctx) const;

  // Bytes of weights streamed from memory to produce one token when decoding
  // (all matrices + the norms; token_embd contributes one row unless tied).
  size_t BytesPerDecodedToken() const;
  // Total bytes of tensor data in the file.
  size_t TensorBytes() const;
  int64_t ParameterCount() const;

 private:
  Model() = default;
  absl::Status Bind();

  std::unique_ptr<gguf::GgufFile> file_;
  ModelParams hp_;
  WeightView tok_embd_{};
  WeightView output_{};
  bool tied_output_ = false;
  const float* output_norm_ = nullptr;
  std::vector<float> rope_freq_factors_;
  const float* rope_factors_short_ = nullptr;  // (n_rot/2) LongRoPE, or null
  const float* rope_factors_long_ = nullptr;
  std::vector<LayerWeights> layers_;
  PackedWeights packed_;  // matrices' interleaved copies, where the CPU uses them
};

// Copies row `row` of `w` into `out` as floats (n_in values). Used for the
// token embedding lookup, whatever the table's type.
void DequantizeWeightRow(const WeightView& w, int64_t row, float* out);

}  // namespace llmesh::engine
