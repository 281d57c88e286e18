#include "llmesh/engine/model_quantize.h"

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "llmesh/engine/quants.h"
#include "llmesh/gguf/gguf_file.h"
#include "spdlog/spdlog.h"

namespace llmesh::engine {

using gguf::GgmlType;

namespace {

bool IsFloatType(GgmlType t) {
  return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16;
}

// Rows per parallel group: about 8 MiB of floats, at least one row.
int64_t RowsPerGroup(int64_t n_in) { return std::max<int64_t>(1, (int64_t{2} << 20) / n_in); }

}  // namespace

absl::Status WriteConvertedRows(ThreadPool& pool, GgmlType type, int64_t n_in, int64_t n_rows,
                                const RowFn& make_row, gguf::TensorSink& sink,
                                const std::function<void(size_t)>& progress_bytes) {
  const auto row_bytes = gguf::ggml_row_size(type, n_in);
  if (!row_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("rows of ", n_in, " elements cannot be ",
                                                   std::string(gguf::ggml_type_name(type))));
  }
  const int64_t group = std::min(n_rows, RowsPerGroup(n_in));
  std::vector<uint8_t> out(static_cast<size_t>(group) * *row_bytes);
  std::vector<float> rows(static_cast<size_t>(pool.n_threads()) * n_in);
  std::vector<absl::Status> errs(pool.n_threads());
  for (int64_t r0 = 0; r0 < n_rows; r0 += group) {
    const int64_t n = std::min(group, n_rows - r0);
    pool.Run([&](int ith, int nth) {
      float* row = rows.data() + static_cast<size_t>(ith) * n_in;
      for (int64_t r = ith; r < n; r += nth) {
        absl::Status s = make_row(r0 + r, row);
        if (s.ok()) s = QuantizeRow(type, row, out.data() + r * *row_bytes, n_in);
        if (!s.ok() && errs[ith].ok()) errs[ith] = s;
      }
    });
    for (const absl::Status& s : errs) {
      if (!s.ok()) return s;
    }
    const size_t bytes = static_cast<size_t>(n) * *row_bytes;
    if (auto s = sink.Write({out.data(), bytes}); !s.ok()) return s;
    if (progress_bytes) progress_bytes(bytes);
  }
  return absl::OkStatus();
}

namespace {

// What llama.cpp's rules read from the model's hyperparameters.
MixModel MixModelOf(const gguf::GgufFile& src) {
  MixModel m;
  m.tied_output = src.FindTensor("output.weight") == nullptr;
  auto arch_or = src.GetString("general.architecture");
  if (!arch_or.ok()) return m;
  const std::string arch(*arch_or);
  auto u32 = [&](std::string_view key) {
    auto v = src.GetU32(absl::StrCat(arch, ".", std::string(key)));
    return v.ok() ? static_cast<int>(*v) : 0;
  };
  m.n_layer = u32("block_count");
  const int n_head = u32("attention.head_count"), n_head_kv = u32("attention.head_count_kv");
  m.n_gqa = n_head > 0 && n_head_kv > 0 ? n_head / n_head_kv : 1;
  m.n_expert = u32("expert_count");
  return m;
}

}  // namespace

absl::Status QuantizeModel(const std::string& in_path, const std::string& out_path,
                           const QuantizeOptions& opts) {
  if (!IsSupportedType(opts.type) || opts.type == GgmlType::kQ8_1 || opts.type == GgmlType::kQ8_K) {
    // Q8_1/Q8_K are activation formats: no kernel multiplies by them.
    return absl::InvalidArgumentError(
        absl::StrCat("cannot quantize weights to ", std::string(gguf::ggml_type_name(opts.type))));
  }
  auto in = gguf::GgufFile::Open(in_path);
  if (!in.ok()) return in.status();
  const gguf::GgufFile& src = **in;
  const QuantMix mix{opts.type, opts.size};
  const MixModel model = MixModelOf(src);

  gguf::GgufWriter w;
  if (auto s = w.CopyMetadata(src); !s.ok()) return s;
  w.SetU32("general.file_type", mix.FileType());
  if (mix.quantized()) w.SetU32("general.quantization_version", 2);

  std::vector<GgmlType> types;
  size_t total = 0;
  for (const gguf::TensorInfo& t : src.tensors()) {
    const GgmlType dst = ChooseTensorType(mix, model, t.name, t.n_dims, t.ne[0], opts.pure);
    if (dst != t.type && !IsFloatType(t.type)) {
      // Requantizing compounds the error; llama.cpp refuses it by default too.
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", std::string(t.name), "' is already ",
          std::string(gguf::ggml_type_name(t.type)), "; quantize from an F32/F16/BF16 model"));
    }
    std::vector<int64_t> dims(t.ne, t.ne + t.n_dims);
    if (auto s = w.DeclareTensor(t.name, dst, std::move(dims)); !s.ok()) return s;
    types.push_back(dst);
    total += w.tensors().back().nbytes;
  }

  ThreadPool pool(opts.n_threads);
  size_t done = 0;
  size_t index = 0;
  auto fill = [&](const gguf::TensorSpec& spec, gguf::TensorSink& sink) -> absl::Status {
    const gguf::TensorInfo& t = src.tensors()[index++];
    const GgmlType dst = types[index - 1];
    spdlog::debug("quantize {} {} -> {}", t.name, gguf::ggml_type_name(t.type),
                  gguf::ggml_type_name(dst));
    auto report = [&](size_t bytes) {
      done += bytes;
      if (opts.progress) opts.progress(done, total);
    };
    if (dst == t.type) {  // copied verbatim
      report(t.nbytes);
      return sink.Write({t.data, t.nbytes});
    }
    const size_t src_row = *gguf::ggml_row_size(t.type, t.ne[0]);
    auto make_row = [&](int64_t r, float* out) {
      return DequantizeRow(t.type, t.data + static_cast<size_t>(r) * src_row, out, t.ne[0]);
    };
    (void)spec;
    return WriteConvertedRows(pool, dst, t.ne[0], t.n_rows(), make_row, sink, report);
  };
  return w.WriteFile(out_path, fill);
}

}  // namespace llmesh::engine
