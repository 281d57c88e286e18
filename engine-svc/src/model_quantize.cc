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

int64_t BlockSize(GgmlType t) { return gguf::ggml_type_traits(t)->block_size; }

// Rows per parallel group: about 8 MiB of floats, at least one row.
int64_t RowsPerGroup(int64_t n_in) { return std::max<int64_t>(1, (int64_t{2} << 20) / n_in); }

}  // namespace

GgmlType ChooseTensorType(std::string_view name, int n_dims, int64_t n_in, GgmlType requested,
                          bool tied_output, bool pure) {
  if (n_dims < 2) return GgmlType::kF32;
  GgmlType t = requested;
  const bool is_output = name == "output.weight" || (tied_output && name == "token_embd.weight");
  const bool ternary = requested == GgmlType::kTQ1_0 || requested == GgmlType::kTQ2_0;
  if (!pure && is_output && !IsFloatType(requested) && requested != GgmlType::kQ8_0) {
    t = GgmlType::kQ6_K;  // llama.cpp keeps the lm head at higher precision
  } else if (!pure && ternary && name == "token_embd.weight") {
    t = GgmlType::kQ4_K;  // embeddings are not ternary; llama.cpp's choice
  }
  if (n_in % BlockSize(t) != 0) {
    switch (t) {
      case GgmlType::kTQ1_0:
      case GgmlType::kTQ2_0:
        t = GgmlType::kQ4_0;  // as llama.cpp falls back
        break;
      case GgmlType::kQ2_K:
      case GgmlType::kQ3_K:
        t = GgmlType::kQ4_0;
        break;
      case GgmlType::kQ4_K:
        t = GgmlType::kQ5_0;
        break;
      case GgmlType::kQ5_K:
        t = GgmlType::kQ5_1;
        break;
      case GgmlType::kQ6_K:
        t = GgmlType::kQ8_0;
        break;
      default:
        break;
    }
    if (n_in % BlockSize(t) != 0) t = GgmlType::kF16;
  }
  return t;
}

uint32_t FileTypeFor(GgmlType type) {
  // llama.h enum llama_ftype; K types map to their _M mixes, the closest.
  switch (type) {
    case GgmlType::kF32:
      return 0;
    case GgmlType::kF16:
      return 1;
    case GgmlType::kQ4_0:
      return 2;
    case GgmlType::kQ4_1:
      return 3;
    case GgmlType::kQ8_0:
      return 7;
    case GgmlType::kQ5_0:
      return 8;
    case GgmlType::kQ5_1:
      return 9;
    case GgmlType::kQ2_K:
      return 10;
    case GgmlType::kQ3_K:
      return 12;
    case GgmlType::kQ4_K:
      return 15;
    case GgmlType::kQ5_K:
      return 17;
    case GgmlType::kQ6_K:
      return 18;
    case GgmlType::kBF16:
      return 32;
    case GgmlType::kTQ1_0:
      return 36;
    case GgmlType::kTQ2_0:
      return 37;
    default:
      return 0;
  }
}

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
  const bool tied = src.FindTensor("output.weight") == nullptr;

  gguf::GgufWriter w;
  if (auto s = w.CopyMetadata(src); !s.ok()) return s;
  w.SetU32("general.file_type", FileTypeFor(opts.type));
  if (!IsFloatType(opts.type)) w.SetU32("general.quantization_version", 2);

  std::vector<GgmlType> types;
  size_t total = 0;
  for (const gguf::TensorInfo& t : src.tensors()) {
    const GgmlType dst = ChooseTensorType(t.name, t.n_dims, t.ne[0], opts.type, tied, opts.pure);
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
