// A file's metadata arrays stay views into the mapping: a small file with one
// huge array must not make the loader allocate many times its size.
#include <malloc.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "llmesh/gguf/gguf_file.h"
#include "llmesh/gguf/gguf_writer.h"

namespace llmesh::gguf {
namespace {

// Bytes malloc has handed out and not had back (small and mmapped blocks).
size_t HeapInUse() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

std::string WriteTemp(const GgufWriter& w, const std::string& name) {
  const std::string path = ::testing::TempDir() + "/llmesh_" + name + "_" +
                           std::to_string(::getpid()) + ".gguf";
  EXPECT_TRUE(w.WriteFile(path).ok());
  return path;
}

// Opens `path` (at least `min_size` bytes) and checks the open file holds
// less than twice the file's size in heap.
void ExpectOpenAllocatesLessThanTwiceTheFile(const std::string& path, size_t min_size) {
  const size_t before = HeapInUse();
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const size_t held = HeapInUse() - before;
  const size_t file = (*f)->file_size();
  EXPECT_GE(file, min_size);
  EXPECT_LT(held, 2 * file) << "opening a " << file << "-byte file holds " << held
                            << " heap bytes";
  std::printf("event=gguf_open_memory file_bytes=%zu heap_bytes=%zu\n", file, held);
  std::remove(path.c_str());
}

TEST(GgufMemoryTest, HugeIntArrayIsNotMaterialised) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  std::vector<int32_t> ints(2'300'000);
  for (size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<int32_t>(i * 7);
  w.SetI32Array("attack.ints", ints);
  const std::string path = WriteTemp(w, "ints");
  ints = {};
  ExpectOpenAllocatesLessThanTwiceTheFile(path, 9'000'000);
}

TEST(GgufMemoryTest, HugeStringArrayIsNotMaterialised) {
  GgufWriter w;
  std::vector<std::string> strs(1'000'000, "x");
  w.SetStringArray("attack.strings", strs);
  const std::string path = WriteTemp(w, "strings");
  strs = {};
  ExpectOpenAllocatesLessThanTwiceTheFile(path, 9'000'000);
}

TEST(GgufMemoryTest, HugeNestedArrayIsNotMaterialised) {
  // 400K arrays of 5 u8 each: 17 bytes of file per inner array.
  GgufWriter w;
  auto u8 = [](uint64_t v) { return Value{ValueType::kUint8, ValueType::kUint8, v}; };
  Array inner{u8(1), u8(2), u8(3), u8(4), u8(5)};
  std::vector<Value> outer(400'000, Value{ValueType::kArray, ValueType::kUint8, inner});
  ASSERT_TRUE(w.SetValue("attack.nested",
                         Value{ValueType::kArray, ValueType::kArray, Array(std::move(outer))})
                  .ok());
  const std::string path = WriteTemp(w, "nested");
  ExpectOpenAllocatesLessThanTwiceTheFile(path, 6'000'000);
}

}  // namespace
}  // namespace llmesh::gguf
