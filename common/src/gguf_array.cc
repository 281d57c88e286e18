// Array values: built element vectors, and views that decode a parsed file's
// encoded elements on access. Views trust their bytes: GgufFile::Open has
// checked every length and type in them.
#include <cstring>

#include "llmesh/gguf/gguf_file.h"

namespace llmesh::gguf {
namespace {

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // memcpy: elements are unaligned
  return v;
}

// Bytes of one element of a fixed-size type; 0 for strings and arrays.
size_t FixedSize(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    case ValueType::kString: case ValueType::kArray: return 0;
  }
  return 0;
}

size_t EncodedSize(ValueType t, const uint8_t* p);

// Bytes of a nested array's elements, which start at p.
size_t ElementsSize(ValueType t, uint64_t n, const uint8_t* p) {
  if (const size_t fixed = FixedSize(t)) return static_cast<size_t>(n) * fixed;
  const uint8_t* q = p;
  for (uint64_t i = 0; i < n; ++i) q += EncodedSize(t, q);
  return static_cast<size_t>(q - p);
}

// Bytes of the element of type t encoded at p.
size_t EncodedSize(ValueType t, const uint8_t* p) {
  if (const size_t fixed = FixedSize(t)) return fixed;
  if (t == ValueType::kString) return 8 + static_cast<size_t>(Load<uint64_t>(p));
  const auto et = static_cast<ValueType>(Load<uint32_t>(p));
  return 12 + ElementsSize(et, Load<uint64_t>(p + 4), p + 12);
}

// The element of type t encoded at p.
Value Decode(ValueType t, const uint8_t* p) {
  Value v;
  v.type = t;
  switch (t) {
    case ValueType::kUint8: v.v = uint64_t{Load<uint8_t>(p)}; break;
    case ValueType::kUint16: v.v = uint64_t{Load<uint16_t>(p)}; break;
    case ValueType::kUint32: v.v = uint64_t{Load<uint32_t>(p)}; break;
    case ValueType::kUint64: v.v = Load<uint64_t>(p); break;
    case ValueType::kInt8: v.v = int64_t{Load<int8_t>(p)}; break;
    case ValueType::kInt16: v.v = int64_t{Load<int16_t>(p)}; break;
    case ValueType::kInt32: v.v = int64_t{Load<int32_t>(p)}; break;
    case ValueType::kInt64: v.v = Load<int64_t>(p); break;
    case ValueType::kFloat32: v.v = double{Load<float>(p)}; break;
    case ValueType::kFloat64: v.v = Load<double>(p); break;
    case ValueType::kBool: v.v = Load<uint8_t>(p) != 0; break;
    case ValueType::kString:
      v.v = std::string_view(reinterpret_cast<const char*>(p + 8),
                             static_cast<size_t>(Load<uint64_t>(p)));
      break;
    case ValueType::kArray: {
      v.array_type = static_cast<ValueType>(Load<uint32_t>(p));
      const uint64_t n = Load<uint64_t>(p + 4);
      v.v = Array::View(v.array_type, n, {p + 12, ElementsSize(v.array_type, n, p + 12)});
      break;
    }
  }
  return v;
}

}  // namespace

Array::Array() = default;
Array::Array(std::initializer_list<Value> elems) : owned_(elems) {}
Array::Array(std::vector<Value> elems) : owned_(std::move(elems)) {}
Array::Array(const Array&) = default;
Array::Array(Array&&) noexcept = default;
Array& Array::operator=(const Array&) = default;
Array& Array::operator=(Array&&) noexcept = default;
Array::~Array() = default;

Array Array::View(ValueType type, uint64_t n, std::span<const uint8_t> bytes) {
  Array a;
  a.view_ = true;
  a.type_ = type;
  a.n_ = n;
  a.data_ = bytes.data();
  a.bytes_ = bytes.size();
  return a;
}

size_t Array::size() const { return view_ ? static_cast<size_t>(n_) : owned_.size(); }

Value Array::operator[](size_t i) const {
  if (!view_) return owned_[i];
  if (const size_t fixed = FixedSize(type_)) return Decode(type_, data_ + i * fixed);
  const uint8_t* p = data_;
  for (size_t k = 0; k < i; ++k) p += EncodedSize(type_, p);
  return Decode(type_, p);
}

Array::Iterator Array::begin() const { return Iterator(this, 0, data_); }
Array::Iterator Array::end() const { return Iterator(this, size(), nullptr); }

Value Array::Iterator::operator*() const {
  return a_->view_ ? Decode(a_->type_, pos_) : a_->owned_[index_];
}

Array::Iterator& Array::Iterator::operator++() {
  if (a_->view_) pos_ += EncodedSize(a_->type_, pos_);
  ++index_;
  return *this;
}

}  // namespace llmesh::gguf
