#include "synth_gguf.h"

#include "absl/strings/str_cat.h"

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

void SetGeneralKeys(gguf::GgufWriter& w, const std::string& arch, const std::string& name, const QuantMix& mix) {
  w.SetString("general.architecture", arch);
  w.SetString("general.name", name);
  w.SetU32("general.file_type", mix.FileType());
  if (mix.quantized()) w.SetU32("general.quantization_version", 2);
}

absl::Status CopyTokenizerKeys(const gguf::GgufFile& vocab, gguf::GgufWriter& w, int64_t pad_to) {
  auto tokens = vocab.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  const auto n = static_cast<int64_t>(tokens->size());
  const bool pad = pad_to > n;
  for (const gguf::KeyValue& kv : vocab.metadata()) {
    if (!kv.key.starts_with("tokenizer.")) continue;
    // The per-token arrays grow by control tokens "<|extra_N|>" (as
    // ../shared/arch's generator pads vocabularies) to reach a model's
    // real vocabulary size.
    if (pad && kv.key == "tokenizer.ggml.tokens") {
      std::vector<std::string> t(tokens->begin(), tokens->end());
      for (int64_t i = n; i < pad_to; ++i) t.push_back(absl::StrCat("<|extra_", i, "|>"));
      w.SetStringArray(kv.key, t);
    } else if (pad && kv.key == "tokenizer.ggml.token_type") {
      auto types = vocab.GetIntArray(kv.key);
      if (!types.ok()) return types.status();
      std::vector<int32_t> t(types->begin(), types->end());
      t.resize(static_cast<size_t>(pad_to), 3);  // control
      w.SetI32Array(kv.key, t);
    } else if (pad && kv.key == "tokenizer.ggml.scores") {
      auto scores = vocab.GetF32Array(kv.key);
      if (!scores.ok()) return scores.status();
      scores->resize(static_cast<size_t>(pad_to), 0.0f);
      w.SetF32Array(kv.key, *scores);
    } else if (auto s = w.CopyKeyValue(kv); !s.ok()) {
      return s;
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
