#include "synth_gguf.h"

#include "llmesh/engine/quants.h"
#include "llmesh/engine/thread_pool.h"

namespace llmesh::engine::internal {

using gguf::GgmlType;

absl::Status CheckSynthType(GgmlType type) {
  // Q8_1/Q8_K are activation formats: no kernel multiplies by them.
  if (!IsSupportedType(type) || type == GgmlType::kQ8_1 || type == GgmlType::kQ8_K) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot synthesize weights of type ", std::string(gguf::ggml_type_name(type))));
  }
  return absl::OkStatus();
}

void SetGeneralKeys(gguf::GgufWriter& w, const std::string& arch, const std::string& name, GgmlType type) {
  w.SetString("general.architecture", arch);
  w.SetString("general.name", name);
  w.SetU32("general.file_type", FileTypeFor(type));
  if (type != GgmlType::kF32 && type != GgmlType::kF16 && type != GgmlType::kBF16) {
    w.SetU32("general.quantization_version", 2);
  }
}

absl::Status CopyTokenizerKeys(const gguf::GgufFile& vocab, gguf::GgufWriter& w) {
  for (const gguf::KeyValue& kv : vocab.metadata()) {
    if (kv.key.starts_with("tokenizer.")) {
      if (auto s = w.CopyKeyValue(kv); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status WriteSynthesized(const gguf::GgufWriter& w, const std::string& path, int n_threads,
                              const ProgressFn& progress, const std::function<RowFn(size_t tensor)>& rows_of) {
  size_t total = 0;
  for (const gguf::TensorSpec& t : w.tensors()) total += t.nbytes;
  ThreadPool pool(n_threads);
  size_t index = 0, done = 0;
  auto fill = [&](const gguf::TensorSpec& spec, gguf::TensorSink& sink) -> absl::Status {
    const int64_t n_in = spec.dims[0];
    const int64_t n_rows = spec.dims.size() > 1 ? spec.dims[1] : 1;
    return WriteConvertedRows(pool, spec.type, n_in, n_rows, rows_of(index++), sink, [&](size_t b) {
      done += b;
      if (progress) progress(done, total);
    });
  };
  return w.WriteFile(path, fill);
}

}  // namespace llmesh::engine::internal
