// Model quantization (`llmesh quantize`) and the tensor-type policy shared
// with the synthesizer: which tensors get which type, as llama.cpp's
// llama_model_quantize decides for a plain type (no importance matrix, no
// per-layer mixes).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/engine/thread_pool.h"
#include "llmesh/gguf/ggml_type.h"
#include "llmesh/gguf/gguf_writer.h"

namespace llmesh::engine {

// Progress of a long write: bytes of tensor data done out of total.
using ProgressFn = std::function<void(size_t done, size_t total)>;

// The type a tensor gets when a model is converted to `requested`:
//  - 1-D tensors (norms, biases, rope_freqs) stay F32;
//  - the output matrix (or token_embd when the output is tied) becomes Q6_K
//    for quantized types other than Q8_0, unless `pure`;
//  - for TQ1_0/TQ2_0 an untied token_embd becomes Q4_K, unless `pure`;
//  - a row length that is not a multiple of the type's block size falls
//    back as llama.cpp does (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1,
//    Q6_K -> Q8_0, TQ1_0/TQ2_0 -> Q4_0), then to F16.
gguf::GgmlType ChooseTensorType(std::string_view name, int n_dims, int64_t n_in,
                                gguf::GgmlType requested, bool tied_output, bool pure);

// general.file_type (llama_ftype) for a model whose weights are `type`.
uint32_t FileTypeFor(gguf::GgmlType type);

// Produces row r of a tensor as floats (n_in values). Must be thread-safe.
using RowFn = std::function<absl::Status(int64_t row, float* out)>;

// Writes n_rows rows made by `make_row`, converted to `type`, into `sink`,
// a group of rows at a time in parallel on `pool`. `progress_bytes` is
// called with the bytes written after each group.
absl::Status WriteConvertedRows(ThreadPool& pool, gguf::GgmlType type, int64_t n_in, int64_t n_rows,
                                const RowFn& make_row, gguf::TensorSink& sink,
                                const std::function<void(size_t)>& progress_bytes);

struct QuantizeOptions {
  gguf::GgmlType type = gguf::GgmlType::kQ8_0;
  bool pure = false;  // every 2-D tensor gets `type` (no Q6_K output)
  int n_threads = 0;
  ProgressFn progress;
};

// Converts an F32/F16/BF16 GGUF model to `opts.type`, copying all metadata
// (general.file_type updated) and writing tensor by tensor.
absl::Status QuantizeModel(const std::string& in_path, const std::string& out_path,
                           const QuantizeOptions& opts);

}  // namespace llmesh::engine
