// GGUF v3 writer. Layout mirrors llama.cpp's gguf_write_to_buf so files are
// byte-identical for the same metadata and tensors.
#include "llmesh/gguf/gguf_writer.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace llmesh::gguf {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint8_t kZeros[256] = {};

template <typename T>
void Append(std::vector<uint8_t>* out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out->insert(out->end(), p, p + sizeof(T));
}

void AppendString(std::vector<uint8_t>* out, std::string_view s) {
  Append<uint64_t>(out, s.size());
  out->insert(out->end(), s.begin(), s.end());
}

template <typename T>
std::vector<uint8_t> Scalar(T v) {
  std::vector<uint8_t> out;
  Append(&out, v);
  return out;
}

template <typename T>
std::vector<uint8_t> ArrayOf(ValueType elem, std::span<const T> v) {
  std::vector<uint8_t> out;
  out.reserve(12 + v.size() * sizeof(T));
  Append<uint32_t>(&out, static_cast<uint32_t>(elem));
  Append<uint64_t>(&out, v.size());
  for (const T& x : v) Append(&out, x);
  return out;
}

template <typename S>
std::vector<uint8_t> StringArray(std::span<const S> v) {
  std::vector<uint8_t> out;
  Append<uint32_t>(&out, static_cast<uint32_t>(ValueType::kString));
  Append<uint64_t>(&out, v.size());
  for (const S& s : v) AppendString(&out, std::string_view(s));
  return out;
}

absl::Status Inconsistent(std::string_view key, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrFormat("key '%s': %s", key, why));
}

template <typename T>
absl::Status AppendInt(std::string_view key, const Value& v, std::vector<uint8_t>* out) {
  if constexpr (std::is_signed_v<T>) {
    const std::optional<int64_t> i = v.as_i64();
    if (!i || *i < std::numeric_limits<T>::min() || *i > std::numeric_limits<T>::max()) {
      return Inconsistent(key, absl::StrFormat("value does not fit in %s", value_type_name(v.type)));
    }
    Append<T>(out, static_cast<T>(*i));
  } else {
    const std::optional<uint64_t> u = v.as_u64();
    if (!u || *u > std::numeric_limits<T>::max()) {
      return Inconsistent(key, absl::StrFormat("value does not fit in %s", value_type_name(v.type)));
    }
    Append<T>(out, static_cast<T>(*u));
  }
  return absl::OkStatus();
}

// Encodes v's payload (everything after its type tag).
absl::Status Encode(std::string_view key, const Value& v, int depth, std::vector<uint8_t>* out) {
  switch (v.type) {
    case ValueType::kUint8: return AppendInt<uint8_t>(key, v, out);
    case ValueType::kInt8: return AppendInt<int8_t>(key, v, out);
    case ValueType::kUint16: return AppendInt<uint16_t>(key, v, out);
    case ValueType::kInt16: return AppendInt<int16_t>(key, v, out);
    case ValueType::kUint32: return AppendInt<uint32_t>(key, v, out);
    case ValueType::kInt32: return AppendInt<int32_t>(key, v, out);
    case ValueType::kUint64: return AppendInt<uint64_t>(key, v, out);
    case ValueType::kInt64: return AppendInt<int64_t>(key, v, out);
    case ValueType::kFloat32:
    case ValueType::kFloat64: {
      if (!std::holds_alternative<double>(v.v)) return Inconsistent(key, "float value holds no double");
      const double d = std::get<double>(v.v);
      if (v.type == ValueType::kFloat64) {
        Append<double>(out, d);
      } else if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) {
        return Inconsistent(key, "value does not fit in f32");
      } else {
        Append<float>(out, static_cast<float>(d));
      }
      return absl::OkStatus();
    }
    case ValueType::kBool: {
      const std::optional<bool> b = v.as_bool();
      if (!b) return Inconsistent(key, "bool value holds no bool");
      Append<uint8_t>(out, *b ? 1 : 0);
      return absl::OkStatus();
    }
    case ValueType::kString: {
      const std::optional<std::string_view> s = v.as_string();
      if (!s) return Inconsistent(key, "string value holds no string");
      AppendString(out, *s);
      return absl::OkStatus();
    }
    case ValueType::kArray: {
      const Array* a = v.as_array();
      if (a == nullptr) return Inconsistent(key, "array value holds no array");
      if (static_cast<uint32_t>(v.array_type) > static_cast<uint32_t>(ValueType::kFloat64)) {
        return Inconsistent(key, "invalid array element type");
      }
      if (v.array_type == ValueType::kArray && depth + 1 >= kMaxArrayDepth) {
        return Inconsistent(key, absl::StrFormat("nested array depth exceeds the limit of %d",
                                                 kMaxArrayDepth));
      }
      Append<uint32_t>(out, static_cast<uint32_t>(v.array_type));
      Append<uint64_t>(out, a->size());
      if (a->is_view() && a->view_type() == v.array_type) {
        // A parsed file's array: its bytes are already valid GGUF.
        out->insert(out->end(), a->encoded().begin(), a->encoded().end());
        return absl::OkStatus();
      }
      for (const Value& e : *a) {
        if (e.type != v.array_type) {
          return Inconsistent(key, absl::StrFormat("array of %s holds a %s element",
                                                   value_type_name(v.array_type),
                                                   value_type_name(e.type)));
        }
        if (auto st = Encode(key, e, depth + 1, out); !st.ok()) return st;
      }
      return absl::OkStatus();
    }
  }
  return Inconsistent(key, absl::StrFormat("unknown value type %d", static_cast<uint32_t>(v.type)));
}

size_t Pad(size_t n, size_t align) { return (align - n % align) % align; }

// Counts and forwards a streamed tensor's bytes, refusing more than declared.
class CountingSink : public TensorSink {
 public:
  CountingSink(const ByteSinkFn& out, const TensorSpec& spec) : out_(out), spec_(spec) {}
  absl::Status Write(std::span<const uint8_t> bytes) override {
    if (bytes.size() > spec_.nbytes - written_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s': fill wrote more than its %d bytes", spec_.name, spec_.nbytes));
    }
    written_ += bytes.size();
    return out_(bytes);
  }
  size_t written() const { return written_; }

 private:
  const ByteSinkFn& out_;
  const TensorSpec& spec_;
  size_t written_ = 0;
};

}  // namespace

GgufWriter::GgufWriter() = default;
GgufWriter::~GgufWriter() = default;
GgufWriter::GgufWriter(GgufWriter&&) noexcept = default;
GgufWriter& GgufWriter::operator=(GgufWriter&&) noexcept = default;

void GgufWriter::Put(std::string_view key, ValueType type, std::vector<uint8_t> payload) {
  auto [it, inserted] = kv_index_.emplace(std::string(key), kvs_.size());
  if (inserted) {
    kvs_.push_back(Kv{std::string(key), type, std::move(payload)});
  } else {
    kvs_[it->second].type = type;
    kvs_[it->second].payload = std::move(payload);
  }
}

void GgufWriter::SetU8(std::string_view k, uint8_t v) { Put(k, ValueType::kUint8, Scalar(v)); }
void GgufWriter::SetI8(std::string_view k, int8_t v) { Put(k, ValueType::kInt8, Scalar(v)); }
void GgufWriter::SetU16(std::string_view k, uint16_t v) { Put(k, ValueType::kUint16, Scalar(v)); }
void GgufWriter::SetI16(std::string_view k, int16_t v) { Put(k, ValueType::kInt16, Scalar(v)); }
void GgufWriter::SetU32(std::string_view k, uint32_t v) { Put(k, ValueType::kUint32, Scalar(v)); }
void GgufWriter::SetI32(std::string_view k, int32_t v) { Put(k, ValueType::kInt32, Scalar(v)); }
void GgufWriter::SetU64(std::string_view k, uint64_t v) { Put(k, ValueType::kUint64, Scalar(v)); }
void GgufWriter::SetI64(std::string_view k, int64_t v) { Put(k, ValueType::kInt64, Scalar(v)); }
void GgufWriter::SetF32(std::string_view k, float v) { Put(k, ValueType::kFloat32, Scalar(v)); }
void GgufWriter::SetF64(std::string_view k, double v) { Put(k, ValueType::kFloat64, Scalar(v)); }
void GgufWriter::SetBool(std::string_view k, bool v) {
  Put(k, ValueType::kBool, Scalar<uint8_t>(v ? 1 : 0));
}
void GgufWriter::SetString(std::string_view k, std::string_view v) {
  std::vector<uint8_t> payload;
  AppendString(&payload, v);
  Put(k, ValueType::kString, std::move(payload));
}
void GgufWriter::SetStringArray(std::string_view k, std::span<const std::string> v) {
  Put(k, ValueType::kArray, StringArray(v));
}
void GgufWriter::SetStringArray(std::string_view k, std::span<const std::string_view> v) {
  Put(k, ValueType::kArray, StringArray(v));
}
void GgufWriter::SetF32Array(std::string_view k, std::span<const float> v) {
  Put(k, ValueType::kArray, ArrayOf(ValueType::kFloat32, v));
}
void GgufWriter::SetI32Array(std::string_view k, std::span<const int32_t> v) {
  Put(k, ValueType::kArray, ArrayOf(ValueType::kInt32, v));
}
void GgufWriter::SetU32Array(std::string_view k, std::span<const uint32_t> v) {
  Put(k, ValueType::kArray, ArrayOf(ValueType::kUint32, v));
}

absl::Status GgufWriter::SetValue(std::string_view key, const Value& v) {
  std::vector<uint8_t> payload;
  if (auto st = Encode(key, v, 0, &payload); !st.ok()) return st;
  Put(key, v.type, std::move(payload));
  return absl::OkStatus();
}

absl::Status GgufWriter::CopyKeyValue(const GgufFile& src, std::string_view key) {
  const Value* v = src.Find(key);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrFormat("key '%s' not found in %s", key, src.path()));
  }
  return SetValue(key, *v);
}

absl::Status GgufWriter::CopyMetadata(const GgufFile& src) {
  for (const KeyValue& kv : src.metadata()) {
    if (auto st = SetValue(kv.key, kv.value); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::SetAlignment(uint32_t alignment) {
  if (auto st = ValidateAlignment(alignment); !st.ok()) return st;
  SetU32(kAlignmentKey, alignment);
  return absl::OkStatus();
}

bool GgufWriter::HasKey(std::string_view key) const {
  return kv_index_.contains(std::string(key));
}

void GgufWriter::RemoveKey(std::string_view key) {
  auto it = kv_index_.find(std::string(key));
  if (it == kv_index_.end()) return;
  kvs_.erase(kvs_.begin() + static_cast<ptrdiff_t>(it->second));
  kv_index_.clear();
  for (size_t i = 0; i < kvs_.size(); ++i) kv_index_.emplace(kvs_[i].key, i);
}

absl::StatusOr<uint32_t> GgufWriter::Alignment() const {
  auto it = kv_index_.find(std::string(kAlignmentKey));
  if (it == kv_index_.end()) return kDefaultAlignment;
  const Kv& kv = kvs_[it->second];
  uint32_t a = 0;
  if (kv.type != ValueType::kUint32) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s must be a u32, got %s", kAlignmentKey, value_type_name(kv.type)));
  }
  std::memcpy(&a, kv.payload.data(), sizeof(a));
  if (auto st = ValidateAlignment(a); !st.ok()) return st;
  return a;
}

absl::StatusOr<TensorSpec> GgufWriter::MakeSpec(std::string_view name, GgmlType type,
                                                std::vector<int64_t> dims) const {
  if (name.size() > kMaxTensorNameLength) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': name is %d bytes long, the limit is %d", name, name.size(),
        kMaxTensorNameLength));
  }
  if (tensor_index_.contains(std::string(name))) {
    return absl::InvalidArgumentError(absl::StrFormat("duplicate tensor name '%s'", name));
  }
  const std::optional<GgmlTypeTraits> traits = ggml_type_traits(type);
  if (!traits) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': unknown tensor type %d", name, static_cast<uint32_t>(type)));
  }
  if (dims.empty() || dims.size() > static_cast<size_t>(kMaxDims)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': n_dims %d is out of range 1..%d", name, dims.size(), kMaxDims));
  }
  int64_t n = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] <= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s': dimension %d is %d, dimensions must be positive", name, d, dims[d]));
    }
    if (__builtin_mul_overflow(n, dims[d], &n)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tensor '%s': element count overflows int64", name));
    }
  }
  if (dims[0] % traits->block_size != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': ne[0] = %d is not a multiple of the block size %d of type %s", name,
        dims[0], traits->block_size, traits->name));
  }
  TensorSpec spec;
  const std::optional<size_t> row = ggml_row_size(type, dims[0]);
  if (!row || __builtin_mul_overflow(*row, static_cast<size_t>(n / dims[0]), &spec.nbytes)) {
    return absl::InvalidArgumentError(absl::StrFormat("tensor '%s': byte size overflows", name));
  }
  // ggml_n_dims: llama.cpp records trailing unit dimensions as absent.
  while (dims.size() > 1 && dims.back() == 1) dims.pop_back();
  spec.name = std::string(name);
  spec.type = type;
  spec.dims = std::move(dims);
  return spec;
}

absl::Status GgufWriter::AddTensor(std::string_view name, GgmlType type, std::vector<int64_t> dims,
                                   std::vector<uint8_t> bytes) {
  absl::StatusOr<TensorSpec> spec = MakeSpec(name, type, std::move(dims));
  if (!spec.ok()) return spec.status();
  if (bytes.size() != spec->nbytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': %d data bytes given, its type and dims need %d", name, bytes.size(),
        spec->nbytes));
  }
  tensor_index_.emplace(spec->name, specs_.size());
  specs_.push_back(*std::move(spec));
  TensorData& d = data_.emplace_back();
  d.owned = std::move(bytes);
  d.view = d.owned;
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensorView(std::string_view name, GgmlType type,
                                       std::vector<int64_t> dims, std::span<const uint8_t> bytes) {
  absl::StatusOr<TensorSpec> spec = MakeSpec(name, type, std::move(dims));
  if (!spec.ok()) return spec.status();
  if (bytes.size() != spec->nbytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s': %d data bytes given, its type and dims need %d", name, bytes.size(),
        spec->nbytes));
  }
  tensor_index_.emplace(spec->name, specs_.size());
  specs_.push_back(*std::move(spec));
  data_.emplace_back().view = bytes;
  return absl::OkStatus();
}

absl::Status GgufWriter::DeclareTensor(std::string_view name, GgmlType type,
                                       std::vector<int64_t> dims) {
  absl::StatusOr<TensorSpec> spec = MakeSpec(name, type, std::move(dims));
  if (!spec.ok()) return spec.status();
  tensor_index_.emplace(spec->name, specs_.size());
  specs_.push_back(*std::move(spec));
  data_.emplace_back().streamed = true;
  return absl::OkStatus();
}

absl::Status GgufWriter::WriteTo(const ByteSinkFn& out, const TensorFillFn& fill) const {
  absl::StatusOr<uint32_t> align_or = Alignment();
  if (!align_or.ok()) return align_or.status();
  const size_t align = *align_or;
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (data_[i].streamed && !fill) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "tensor '%s' was declared without data and no fill callback was given", specs_[i].name));
    }
  }

  // Header, metadata and tensor infos are small: build them in one buffer.
  std::vector<uint8_t> head;
  Append<uint32_t>(&head, 0x46554747);  // "GGUF"
  Append<uint32_t>(&head, kVersion);
  Append<uint64_t>(&head, specs_.size());
  Append<uint64_t>(&head, kvs_.size());
  for (const Kv& kv : kvs_) {
    AppendString(&head, kv.key);
    Append<uint32_t>(&head, static_cast<uint32_t>(kv.type));
    head.insert(head.end(), kv.payload.begin(), kv.payload.end());
  }
  uint64_t offset = 0;
  for (const TensorSpec& t : specs_) {
    AppendString(&head, t.name);
    Append<uint32_t>(&head, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Append<int64_t>(&head, d);
    Append<uint32_t>(&head, static_cast<uint32_t>(t.type));
    Append<uint64_t>(&head, offset);
    offset += t.nbytes + Pad(t.nbytes, align);
  }
  head.resize(head.size() + Pad(head.size(), align), 0);
  if (auto st = out(head); !st.ok()) return st;

  auto pad = [&](size_t n) -> absl::Status {
    for (size_t left = Pad(n, align); left > 0;) {
      const size_t chunk = std::min(left, sizeof(kZeros));
      if (auto st = out(std::span<const uint8_t>(kZeros, chunk)); !st.ok()) return st;
      left -= chunk;
    }
    return absl::OkStatus();
  };
  for (size_t i = 0; i < specs_.size(); ++i) {
    const TensorSpec& t = specs_[i];
    if (data_[i].streamed) {
      CountingSink sink(out, t);
      if (auto st = fill(t, sink); !st.ok()) return st;
      if (sink.written() != t.nbytes) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "tensor '%s': fill wrote %d bytes, expected %d", t.name, sink.written(), t.nbytes));
      }
    } else if (auto st = out(data_[i].view); !st.ok()) {
      return st;
    }
    if (auto st = pad(t.nbytes); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::WriteFile(const std::string& path, const TensorFillFn& fill) const {
  const std::string tmp = path + ".tmp";
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!f) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  absl::Status st = WriteTo(
      [&](std::span<const uint8_t> bytes) -> absl::Status {
        if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
          return absl::DataLossError(absl::StrCat("write to ", tmp, " failed: ", std::strerror(errno)));
        }
        return absl::OkStatus();
      },
      fill);
  if (st.ok() && std::fclose(f.release()) != 0) {
    st = absl::DataLossError(absl::StrCat("closing ", tmp, " failed: ", std::strerror(errno)));
  }
  if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    st = absl::PermissionDeniedError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
  }
  if (!st.ok()) {
    f.reset();
    std::remove(tmp.c_str());
  }
  return st;
}

std::vector<uint8_t> GgufWriter::WriteToBuffer(const TensorFillFn& fill) const {
  std::vector<uint8_t> buf;
  absl::Status st = WriteTo(
      [&](std::span<const uint8_t> bytes) {
        buf.insert(buf.end(), bytes.begin(), bytes.end());
        return absl::OkStatus();
      },
      fill);
  if (!st.ok()) {
    spdlog::error("GgufWriter::WriteToBuffer: {}", st.ToString());
    return {};
  }
  return buf;
}

}  // namespace llmesh::gguf
