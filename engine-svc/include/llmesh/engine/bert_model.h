// A loaded BERT-family encoder (GGUF architecture `bert`: all-MiniLM, bge,
// e5 converted by llama.cpp's convert_hf_to_gguf.py BertModel): embedding
// models only. Like Model, an immutable set of zero-copy views into the
// read-only mmap of the file, shared by every thread.
//
// Tensor names and shapes follow llama.cpp (LLM_ARCH_BERT), written
// (rows, cols) = (ne[1], ne[0]):
//   token_embd.weight            (n_vocab, n_embd)        any type
//   token_types.weight           (n_token_types, n_embd)  optional; row 0 used
//   position_embd.weight         (n_ctx_train, n_embd)    learned absolute positions
//   token_embd_norm.weight/.bias (n_embd)                 LayerNorm of the input sum
//   blk.L.attn_q/k/v.weight      (n_embd, n_embd)         + .bias (n_embd)
//   blk.L.attn_output.weight     (n_embd, n_embd)         + .bias
//   blk.L.attn_output_norm.weight/.bias (n_embd)          post-attention LayerNorm
//   blk.L.ffn_up.weight          (n_ff, n_embd)           + .bias (n_ff)
//   blk.L.ffn_down.weight        (n_embd, n_ff)           + .bias (n_embd)
//   blk.L.layer_output_norm.weight/.bias (n_embd)         post-FFN LayerNorm
// Biases are optional (newer llama.cpp loads them as TENSOR_NOT_REQUIRED);
// an absent bias is zero. Norms and biases are F32.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/engine/matmul.h"
#include "llmesh/engine/pooling.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::engine {

// Hyperparameters from `bert.*` metadata, validated at load.
struct BertParams {
  std::string name;           // general.name, for display only
  int64_t n_vocab = 0;        // rows of token_embd
  int64_t n_ctx_train = 0;    // bert.context_length == rows of position_embd
  int64_t n_embd = 0;         // bert.embedding_length
  int64_t n_layer = 0;        // bert.block_count
  int64_t n_ff = 0;           // bert.feed_forward_length
  int64_t n_head = 0;         // bert.attention.head_count
  int64_t n_token_types = 0;  // rows of token_types (0: the tensor is absent)
  float norm_eps = 0;         // bert.attention.layer_norm_epsilon
  // bert.pooling_type as llama.cpp numbers it (1 mean, 2 cls, 3 last);
  // absent or 0 (none) means mean. Never kDefault.
  Pooling pooling = Pooling::kMean;

  int64_t head_dim() const { return n_embd / n_head; }
};

// Reads and validates the `bert.*` keys (INVALID_ARGUMENT naming the key).
// n_vocab and n_token_types are left 0: the loader takes them from tensors.
absl::StatusOr<BertParams> ReadBertParams(const gguf::GgufFile& file);

// True when general.architecture is "bert".
bool IsBertFile(const gguf::GgufFile& file);

struct BertLayerWeights {
  WeightView wq{}, wk{}, wv{}, wo{};
  const float* bq = nullptr;  // (n_embd) each, or null
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* bo = nullptr;
  const float* attn_out_norm = nullptr;    // (n_embd)
  const float* attn_out_norm_b = nullptr;  // (n_embd)
  WeightView w_up{}, w_down{};
  const float* b_up = nullptr;    // (n_ff) or null
  const float* b_down = nullptr;  // (n_embd) or null
  const float* out_norm = nullptr;    // (n_embd)
  const float* out_norm_b = nullptr;  // (n_embd)
};

class BertModel {
 public:
  static absl::StatusOr<std::unique_ptr<BertModel>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<BertModel>> FromGguf(std::unique_ptr<gguf::GgufFile> file);

  const BertParams& params() const { return hp_; }
  const gguf::GgufFile& file() const { return *file_; }

  const WeightView& tok_embd() const { return tok_embd_; }
  const WeightView& pos_embd() const { return pos_embd_; }
  // (n_embd) row 0 of token_types ("sentence A", the only type llama.cpp
  // uses), dequantized at load; zeros when the file has no token_types.
  const std::vector<float>& type_embd_row0() const { return type_row0_; }
  const float* embd_norm() const { return embd_norm_; }
  const float* embd_norm_b() const { return embd_norm_b_; }
  const std::vector<BertLayerWeights>& layers() const { return layers_; }

  size_t TensorBytes() const;
  int64_t ParameterCount() const;

 private:
  BertModel() = default;
  absl::Status Bind();

  std::unique_ptr<gguf::GgufFile> file_;
  BertParams hp_;
  WeightView tok_embd_{};
  WeightView pos_embd_{};
  std::vector<float> type_row0_;
  const float* embd_norm_ = nullptr;
  const float* embd_norm_b_ = nullptr;
  std::vector<BertLayerWeights> layers_;
};

}  // namespace llmesh::engine
