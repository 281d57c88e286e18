// Bounds-checked little-endian cursor over a byte range. Every read either
// succeeds entirely inside [data, data + size) or fails without moving, so
// the parser can never read past the mapping whatever the file claims.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace llmesh::gguf::internal {

static_assert(std::endian::native == std::endian::little,
              "GGUF is little-endian; a big-endian host needs byte swaps here");

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t offset() const { return pos_; }
  const uint8_t* data() const { return data_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  bool Read(T* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, data_ + pos_, sizeof(T));  // memcpy: fields are unaligned
    pos_ += sizeof(T);
    return true;
  }

  // Moves past n bytes, or fails without moving when fewer are left.
  bool Skip(size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }

  // A GGUF string: u64 length, then that many bytes (no terminator). The
  // length is checked against what is left before anything is looked at.
  bool ReadString(std::string_view* out) {
    uint64_t len = 0;
    if (remaining() < sizeof(len)) return false;
    std::memcpy(&len, data_ + pos_, sizeof(len));
    if (len > remaining() - sizeof(len)) return false;
    pos_ += sizeof(len);
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return true;
  }

  // Length prefix of the string at the cursor, for error messages.
  uint64_t PeekU64() const {
    uint64_t v = 0;
    if (remaining() >= sizeof(v)) std::memcpy(&v, data_ + pos_, sizeof(v));
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace llmesh::gguf::internal
