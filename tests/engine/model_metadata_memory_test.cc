// Loading a model whose file carries one huge metadata array (that no part
// of the engine needs) costs no more memory than loading the model without
// it: the array stays a view into the mapping.
#include <malloc.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/engine.h"
#include "llmesh/gguf/gguf_writer.h"
#include "model_test_util.h"

namespace llmesh::engine {
namespace {

size_t HeapInUse() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// stories260K plus the keys `extra` sets, written to `path`.
void WriteStories(const std::string& path, const std::function<void(gguf::GgufWriter&)>& extra) {
  auto src = gguf::GgufFile::Open(testing::StoriesPath());
  ASSERT_TRUE(src.ok()) << src.status();
  gguf::GgufWriter w;
  ASSERT_TRUE(w.CopyMetadata(**src).ok());
  if (extra) extra(w);
  for (const gguf::TensorInfo& t : (*src)->tensors()) {
    ASSERT_TRUE(w.AddTensorView(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                                {t.data, t.nbytes})
                    .ok());
  }
  ASSERT_TRUE(w.WriteFile(path).ok());
}

// Heap bytes a fresh Engine holds after loading `name` from `dir`.
size_t EngineLoadHeap(const std::string& dir, const std::string& name) {
  EngineConfig config;
  config.model_dir = dir;
  config.n_threads = 1;
  // A small KV pool, so the bound below measures the model, not the pool.
  config.scheduler.kv_budget_bytes = 4u << 20;
  Engine engine(config);
  const size_t before = HeapInUse();
  auto info = engine.LoadModel(name);
  EXPECT_TRUE(info.ok()) << info.status();
  return HeapInUse() - before;
}

TEST(ModelMetadataMemory, HugeUnusedArrayAddsNoHeap) {
  const std::filesystem::path dir =
      std::filesystem::path(testing::TempPath("metadata_memory_dir"));
  std::filesystem::create_directories(dir);
  WriteStories((dir / "plain.gguf").string(), nullptr);
  WriteStories((dir / "attack.gguf").string(), [](gguf::GgufWriter& w) {
    std::vector<int32_t> ints(2'300'000, 7);
    w.SetI32Array("attack.ints", ints);
  });
  const size_t file = std::filesystem::file_size(dir / "attack.gguf");
  ASSERT_GT(file, 9'000'000u);

  const size_t plain = EngineLoadHeap(dir.string(), "plain");
  const size_t attack = EngineLoadHeap(dir.string(), "attack");
  std::printf("event=engine_load_memory file_bytes=%zu plain_heap=%zu attack_heap=%zu\n", file,
              plain, attack);
  EXPECT_LT(attack, 2 * file) << "loading a " << file << "-byte model holds " << attack
                              << " heap bytes";
  // What the array itself costs: nothing beyond noise, it is never copied.
  EXPECT_LT(attack, plain + file / 8) << "plain model: " << plain << " bytes";

  // A bare GgufFile of the same model.
  const size_t before = HeapInUse();
  auto f = gguf::GgufFile::Open((dir / "attack.gguf").string());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_LT(HeapInUse() - before, 2 * file);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmesh::engine
