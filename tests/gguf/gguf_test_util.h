// Helpers for GGUF tests: a raw byte builder for files the writer refuses to
// produce, and a walker that touches every byte a parsed file exposes.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "llmesh/gguf/gguf_file.h"

namespace llmesh::gguf::testing {

// Appends little-endian GGUF primitives; no validation at all.
class RawGguf {
 public:
  template <typename T>
  RawGguf& Put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  RawGguf& U8(uint8_t v) { return Put(v); }
  RawGguf& U32(uint32_t v) { return Put(v); }
  RawGguf& U64(uint64_t v) { return Put(v); }
  RawGguf& I64(int64_t v) { return Put(v); }
  RawGguf& Str(std::string_view s) {
    U64(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  RawGguf& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    bytes.insert(bytes.end(), {'G', 'G', 'U', 'F'});
    return U32(version).U64(n_tensors).U64(n_kv);
  }
  RawGguf& KvU32(std::string_view key, uint32_t v) { return Str(key).U32(4).U32(v); }
  RawGguf& KvString(std::string_view key, std::string_view v) { return Str(key).U32(8).Str(v); }
  RawGguf& TensorInfo(std::string_view name, std::vector<int64_t> dims, uint32_t type,
                      uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(dims.size()));
    for (int64_t d : dims) I64(d);
    return U32(type).U64(offset);
  }
  RawGguf& PadTo(size_t align) {
    while (bytes.size() % align != 0) bytes.push_back(0);
    return *this;
  }
  RawGguf& Zeros(size_t n) {
    bytes.insert(bytes.end(), n, 0);
    return *this;
  }

  std::vector<uint8_t> bytes;
};

// Reads every value and every tensor byte, so ASan sees any view that
// escapes the buffer. Returns a checksum to keep the reads alive.
inline uint64_t TouchAll(const GgufFile& f) {
  uint64_t sum = 0;
  struct Walk {
    uint64_t* sum;
    void operator()(const Value& v) const {
      if (auto s = v.as_string()) {
        for (char c : *s) *sum += static_cast<uint8_t>(c);
      } else if (const Array* a = v.as_array()) {
        for (const Value& e : *a) (*this)(e);
      } else if (auto u = v.as_u64()) {
        *sum += *u;
      }
    }
  };
  for (const KeyValue& kv : f.metadata()) {
    sum += kv.key.size();
    Walk{&sum}(kv.value);
  }
  for (const TensorInfo& t : f.tensors()) {
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
  }
  return sum;
}

}  // namespace llmesh::gguf::testing
