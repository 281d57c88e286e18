// libFuzzer entry point for the GGUF loader: any input must parse or fail
// cleanly, and everything a successful parse exposes must be readable.
#include <cstddef>
#include <cstdint>
#include <span>

#include "llmesh/gguf/gguf_file.h"
#include "llmesh/gguf/gguf_writer.h"

namespace {

using llmesh::gguf::Array;
using llmesh::gguf::GgufFile;
using llmesh::gguf::Value;

uint64_t Walk(const Value& v) {
  uint64_t sum = static_cast<uint64_t>(v.type);
  if (auto s = v.as_string()) {
    for (char c : *s) sum += static_cast<uint8_t>(c);
  } else if (const Array* a = v.as_array()) {
    for (const Value& e : *a) sum += Walk(e);
  } else {
    sum += v.as_u64().value_or(0) + static_cast<uint64_t>(v.as_i64().value_or(0)) +
           static_cast<uint64_t>(v.as_bool().value_or(false));
    (void)v.as_f64();
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = GgufFile::FromBuffer(std::span<const uint8_t>(data, size));
  if (!f.ok()) return 0;
  const GgufFile& g = **f;
  volatile uint64_t sink = g.version() + g.alignment();
  for (const auto& kv : g.metadata()) {
    sink = sink + Walk(kv.value);
    // Every typed getter must answer, whatever the value's type.
    (void)g.GetString(kv.key);
    (void)g.GetU64(kv.key);
    (void)g.GetU32(kv.key);
    (void)g.GetF32(kv.key);
    (void)g.GetBool(kv.key);
    (void)g.GetStringArray(kv.key);
    (void)g.GetF32Array(kv.key);
    (void)g.GetIntArray(kv.key);
    if (g.Find(kv.key) != &kv.value) __builtin_trap();
  }
  for (const auto& t : g.tensors()) {
    if (g.FindTensor(t.name) != &t) __builtin_trap();
    uint64_t s = 0;
    for (size_t i = 0; i < t.nbytes; ++i) s += t.data[i];
    sink = sink + s + static_cast<uint64_t>(t.n_elements());
  }
  // Whatever parsed must re-encode and parse again to the same structure.
  llmesh::gguf::GgufWriter w;
  if (!w.CopyMetadata(g).ok()) __builtin_trap();
  for (const auto& t : g.tensors()) {
    if (!w.AddTensorView(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                         {t.data, t.nbytes})
             .ok()) {
      __builtin_trap();
    }
  }
  auto again = GgufFile::FromBuffer(w.WriteToBuffer());
  if (!again.ok() || (*again)->metadata().size() != g.metadata().size() ||
      (*again)->tensors().size() != g.tensors().size()) {
    __builtin_trap();
  }
  return 0;
}
