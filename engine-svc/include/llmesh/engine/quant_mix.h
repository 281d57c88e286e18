// Which type each tensor of a quantized model gets: llama.cpp's file types
// (llama_ftype: Q4_0, Q4_K_M, IQ4_XS, ...) and its rules for them
// (llama-quant.cpp, llama_tensor_get_type, without an importance matrix), so
// a file made here holds the same tensor types as the one people download.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "llmesh/gguf/ggml_type.h"

namespace llmesh::engine {

// The size letter of a K-quant mix. kDefault is what llama-quantize makes
// of the bare type name: Q3_K, Q4_K and Q5_K are their _M mixes.
enum class MixSize { kDefault, kS, kL };

struct QuantMix {
  gguf::GgmlType type = gguf::GgmlType::kF32;  // what most matrices get
  MixSize size = MixSize::kDefault;

  // "Q4_K_M", "Q8_0", "f16" (case-insensitive).
  static absl::StatusOr<QuantMix> Parse(std::string_view name);
  std::string Name() const;   // "Q4_K_M"
  uint32_t FileType() const;  // general.file_type (llama_ftype)
  bool quantized() const;
};

// The facts about a model the rules look at.
struct MixModel {
  int n_layer = 0;
  int n_gqa = 1;     // query heads per KV head
  int n_expert = 0;
  bool tied_output = false;  // no output.weight: token_embd is the lm head
};

// The type tensor `name` (n_dims dimensions, rows of n_in) gets:
//  - 1-D tensors (norms, biases, rope_freqs) stay F32, float mixes keep
//    every matrix at their type;
//  - the lm head becomes Q6_K (Q8_0 where its rows do not fit K blocks)
//    unless the mix is Q8_0, and the K and IQ4 mixes give some attn_v,
//    ffn_down, attn_output and attn_qkv matrices more bits by layer;
//  - `pure` turns all of that off: every matrix gets the mix's type;
//  - a row length that is not a multiple of the type's block size falls
//    back as llama.cpp does (Q2_K/Q3_K/IQ4_XS -> IQ4_NL, Q4_K -> Q5_0,
//    Q5_K -> Q5_1, Q6_K -> Q8_0, TQ1_0/TQ2_0 -> Q4_0), then to F16.
gguf::GgmlType ChooseTensorType(const QuantMix& mix, const MixModel& model, std::string_view name, int n_dims,
                                int64_t n_in, bool pure);

}  // namespace llmesh::engine
