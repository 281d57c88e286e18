// Model quantization (`llmesh quantize`): an F32/F16/BF16 model converted
// tensor by tensor to the types a llama.cpp file type gives them
// (quant_mix.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/engine/quant_mix.h"
#include "llmesh/engine/thread_pool.h"
#include "llmesh/gguf/ggml_type.h"
#include "llmesh/gguf/gguf_writer.h"

namespace llmesh::engine {

// Progress of a long write: bytes of tensor data done out of total.
using ProgressFn = std::function<void(size_t done, size_t total)>;

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
  MixSize size = MixSize::kDefault;  // with `type`, the file type (Q4_K + kS: Q4_K_S)
  bool pure = false;                 // every 2-D tensor gets `type` (no Q6_K output, no mix)
  int n_threads = 0;
  ProgressFn progress;
};

// Converts an F32/F16/BF16 GGUF model to the file type of `opts`, copying
// all metadata (general.file_type updated) and writing tensor by tensor.
absl::Status QuantizeModel(const std::string& in_path, const std::string& out_path,
                           const QuantizeOptions& opts);

}  // namespace llmesh::engine
