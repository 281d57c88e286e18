// Read-only view of a GGUF v2/v3 file: metadata key/values and tensor infos,
// with zero-copy tensor data pointing into a read-only mmap of the file.
//
// Every structural check happens in Open(): once it returns OK, every string,
// array and tensor view is inside the mapping and may be read without checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "llmesh/gguf/ggml_type.h"

namespace llmesh::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5,
  kFloat32 = 6, kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11,
  kFloat64 = 12,
};
std::string_view value_type_name(ValueType t);

// Limits the loader enforces so a hostile file cannot make it recurse or
// allocate without bound. Real models sit far below each of them.
inline constexpr int kMaxArrayDepth = 8;                    // array-of-array nesting
inline constexpr uint64_t kMaxMetadataValues = 1ull << 23;  // all array elements, all keys
inline constexpr size_t kMaxTensorNameLength = 63;          // ggml's GGML_MAX_NAME - 1
inline constexpr int kMaxDims = 4;
inline constexpr uint32_t kDefaultAlignment = 32;
// Largest accepted data alignment: 64 KiB pages (arm64) are the biggest real
// reason to align; a file asking for a gigabyte would make re-encoding pad
// the header to that size.
inline constexpr uint32_t kMaxAlignment = 1u << 16;
inline constexpr std::string_view kAlignmentKey = "general.alignment";
// OK when `alignment` is a power of two no larger than kMaxAlignment.
absl::Status ValidateAlignment(uint64_t alignment);

struct Value;

// An array value: either elements built in memory (values handed to the
// writer) or, in a parsed file, a view of the encoded elements inside the
// mapping, decoded on access. A file's arrays so cost nothing beyond the
// mapping however many elements they hold (a 9 MB array of 2M ints used to
// become 80 MB of Values).
class Array {
 public:
  // Forward iterator yielding each element as a Value (by value).
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Value;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Value;

    Value operator*() const;
    Iterator& operator++();
    bool operator==(const Iterator& o) const { return index_ == o.index_; }

   private:
    friend class Array;
    Iterator(const Array* a, size_t index, const uint8_t* pos) : a_(a), index_(index), pos_(pos) {}
    const Array* a_;
    size_t index_;
    const uint8_t* pos_;  // encoded element `index_` (views only)
  };

  Array();
  Array(std::initializer_list<Value> elems);
  explicit Array(std::vector<Value> elems);
  // `n` elements of `type` encoded back to back in `bytes`, which the caller
  // has validated (GgufFile::Open does) and keeps alive.
  static Array View(ValueType type, uint64_t n, std::span<const uint8_t> bytes);
  Array(const Array&);
  Array(Array&&) noexcept;
  Array& operator=(const Array&);
  Array& operator=(Array&&) noexcept;
  ~Array();

  size_t size() const;
  bool empty() const { return size() == 0; }
  // Element i: O(1) for numbers and bools; in a view, strings and arrays
  // are found by walking from the start, so iterate to visit them all.
  Value operator[](size_t i) const;
  Iterator begin() const;
  Iterator end() const;

  // A view's element type and encoded elements (what follows the element
  // type and count in the file); the bytes are empty for built arrays.
  bool is_view() const { return view_; }
  ValueType view_type() const { return type_; }
  std::span<const uint8_t> encoded() const { return {data_, bytes_}; }

 private:
  std::vector<Value> owned_;
  bool view_ = false;
  ValueType type_ = ValueType::kUint8;
  uint64_t n_ = 0;
  const uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

// One metadata value. Strings and arrays are views into the mapping (or
// into the buffer handed to FromBuffer), valid while the GgufFile lives.
struct Value {
  ValueType type = ValueType::kUint8;
  ValueType array_type = ValueType::kUint8;  // element type when type == kArray
  std::variant<uint64_t, int64_t, double, bool, std::string_view, Array> v;

  // Numeric conversions succeed for any integer/float type whose value fits.
  std::optional<uint64_t> as_u64() const;
  std::optional<int64_t> as_i64() const;
  std::optional<double> as_f64() const;
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;
  const Array* as_array() const;  // nullptr if not an array
};

struct KeyValue {
  std::string_view key;
  Value value;
};

struct TensorInfo {
  std::string_view name;
  GgmlType type;
  int n_dims;                  // 1..4
  int64_t ne[4];               // ne[0] is the contiguous (row) dimension; unused dims are 1
  uint64_t offset;             // relative to the start of the data section
  size_t nbytes;               // exact size of the data
  const uint8_t* data;         // points into the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Maps the file read-only and validates it completely.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses a file held in memory (tests, fuzzing). The buffer is copied.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBuffer(std::span<const uint8_t> bytes);

  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }
  const std::string& path() const { return path_; }

  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* Find(std::string_view key) const;  // nullptr if absent

  // Typed getters: NOT_FOUND if absent, INVALID_ARGUMENT naming the key if
  // present with a different type or out of range.
  absl::StatusOr<std::string_view> GetString(std::string_view key) const;
  absl::StatusOr<uint64_t> GetU64(std::string_view key) const;
  absl::StatusOr<uint32_t> GetU32(std::string_view key) const;
  absl::StatusOr<float> GetF32(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  // Arrays, checked to hold the requested element kind.
  absl::StatusOr<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetF32Array(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;  // nullptr if absent

  // Lets the kernel drop the resident pages of [p, p + n) when the file is
  // mmapped (no-op for FromBuffer files): for tensor data the caller has
  // copied elsewhere. Reads of the range still work; they fault it back in.
  void DropPages(const void* p, size_t n) const;

 private:
  GgufFile() = default;
  absl::Status Parse();

  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;          // munmap'd in the destructor when set
  std::vector<uint8_t> owned_;       // FromBuffer's copy
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
  absl::flat_hash_map<std::string_view, size_t> kv_index_;      // key -> index in kv_
  absl::flat_hash_map<std::string_view, size_t> tensor_index_;  // name -> index in tensors_
};

}  // namespace llmesh::gguf
