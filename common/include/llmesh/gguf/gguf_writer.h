// Builds GGUF v3 files byte-compatible with llama.cpp's gguf writer: metadata
// in insertion order, tensor infos, zero padding to `general.alignment`
// (default 32) after the infos and after every tensor's data.
//
// Tensor data comes three ways: owned bytes, a caller-owned span (kept alive
// until the write), or declared with type and dims only and produced at write
// time by a fill callback, in declaration order, so a multi-GB synthesized
// model never has to sit in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/gguf/ggml_type.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::gguf {

// A tensor as the writer will emit it.
struct TensorSpec {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> dims;  // ne order: dims[0] is the contiguous row; trailing 1s trimmed
  size_t nbytes = 0;          // exact data size, without padding
};

// Destination of a streamed tensor's bytes. A fill callback must Write
// exactly spec.nbytes in total, in as many chunks as it likes.
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  virtual absl::Status Write(std::span<const uint8_t> bytes) = 0;
};
using TensorFillFn = std::function<absl::Status(const TensorSpec& tensor, TensorSink& sink)>;
// Destination of the whole file's bytes, in order.
using ByteSinkFn = std::function<absl::Status(std::span<const uint8_t> bytes)>;

class GgufWriter {
 public:
  GgufWriter();
  ~GgufWriter();
  GgufWriter(GgufWriter&&) noexcept;
  GgufWriter& operator=(GgufWriter&&) noexcept;

  // Metadata. Setting a key again replaces its value and keeps its position,
  // as llama.cpp's gguf_set_* does.
  void SetU8(std::string_view key, uint8_t v);
  void SetI8(std::string_view key, int8_t v);
  void SetU16(std::string_view key, uint16_t v);
  void SetI16(std::string_view key, int16_t v);
  void SetU32(std::string_view key, uint32_t v);
  void SetI32(std::string_view key, int32_t v);
  void SetU64(std::string_view key, uint64_t v);
  void SetI64(std::string_view key, int64_t v);
  void SetF32(std::string_view key, float v);
  void SetF64(std::string_view key, double v);
  void SetBool(std::string_view key, bool v);
  void SetString(std::string_view key, std::string_view v);
  void SetStringArray(std::string_view key, std::span<const std::string> v);
  void SetStringArray(std::string_view key, std::span<const std::string_view> v);
  void SetF32Array(std::string_view key, std::span<const float> v);
  void SetI32Array(std::string_view key, std::span<const int32_t> v);
  void SetU32Array(std::string_view key, std::span<const uint32_t> v);
  // Any value, nested arrays included. INVALID_ARGUMENT when the value is
  // inconsistent (variant does not match its type, element of another type,
  // number out of range for its type, nesting deeper than kMaxArrayDepth).
  absl::Status SetValue(std::string_view key, const Value& v);
  // Copies one key, or every key, from an opened file (e.g. a vocabulary).
  absl::Status CopyKeyValue(const KeyValue& kv) { return SetValue(kv.key, kv.value); }
  absl::Status CopyKeyValue(const GgufFile& src, std::string_view key);
  absl::Status CopyMetadata(const GgufFile& src);
  // Writes general.alignment (u32); must be a power of two ≤ kMaxAlignment.
  absl::Status SetAlignment(uint32_t alignment);
  bool HasKey(std::string_view key) const;
  void RemoveKey(std::string_view key);
  size_t kv_count() const { return kvs_.size(); }

  // Tensors. Each checks the name (unique, <= kMaxTensorNameLength bytes),
  // 1..4 positive dims without overflow, ne[0] a multiple of the block size,
  // and for data-carrying forms that bytes.size() is exactly the data size.
  absl::Status AddTensor(std::string_view name, GgmlType type, std::vector<int64_t> dims,
                         std::vector<uint8_t> bytes);
  // The bytes are not copied: they must stay valid until the write returns.
  absl::Status AddTensorView(std::string_view name, GgmlType type, std::vector<int64_t> dims,
                             std::span<const uint8_t> bytes);
  // Data supplied at write time by the fill callback.
  absl::Status DeclareTensor(std::string_view name, GgmlType type, std::vector<int64_t> dims);
  const std::vector<TensorSpec>& tensors() const { return specs_; }

  // Emits the file. `fill` is called once per declared tensor, in order; it
  // may be empty when no tensor was declared without data.
  absl::Status WriteTo(const ByteSinkFn& out, const TensorFillFn& fill = nullptr) const;
  // Writes PATH.tmp and renames it over PATH, so a failed write leaves no
  // half-written model behind.
  absl::Status WriteFile(const std::string& path, const TensorFillFn& fill = nullptr) const;
  // For tests: the whole file in memory; empty (and logged) on error.
  std::vector<uint8_t> WriteToBuffer(const TensorFillFn& fill = nullptr) const;

 private:
  struct Kv {
    std::string key;
    ValueType type;
    std::vector<uint8_t> payload;  // encoded value, without the type tag
  };
  struct TensorData {
    std::vector<uint8_t> owned;
    std::span<const uint8_t> view;  // into `owned`, the caller's bytes, or empty when streamed
    bool streamed = false;
  };

  void Put(std::string_view key, ValueType type, std::vector<uint8_t> payload);
  absl::StatusOr<TensorSpec> MakeSpec(std::string_view name, GgmlType type,
                                      std::vector<int64_t> dims) const;
  absl::StatusOr<uint32_t> Alignment() const;

  std::vector<Kv> kvs_;
  absl::flat_hash_map<std::string, size_t> kv_index_;
  std::vector<TensorSpec> specs_;
  std::vector<TensorData> data_;  // parallel to specs_
  absl::flat_hash_map<std::string, size_t> tensor_index_;
};

}  // namespace llmesh::gguf
