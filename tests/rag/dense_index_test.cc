#include "llmesh/rag/dense_index.h"

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

namespace llmesh::rag {
namespace {

std::vector<float> RandomUnit(std::mt19937& rng, int dim) {
  std::normal_distribution<float> n;
  std::vector<float> v(static_cast<size_t>(dim));
  for (auto& x : v) x = n(rng);
  Normalize(v);
  return v;
}

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("rag_dense_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(DenseIndexTest, FindsItselfAndGrows) {
  auto index = DenseIndex::Create(32, Metric::kCosine, {}, 16);
  ASSERT_TRUE(index.ok());
  std::mt19937 rng(1);
  std::vector<std::vector<float>> vs;
  for (int i = 0; i < 500; ++i) {  // past the initial capacity
    vs.push_back(RandomUnit(rng, 32));
    ASSERT_TRUE((*index)->Add(i + 1, vs.back()).ok());
  }
  EXPECT_EQ((*index)->live_count(), 500u);
  auto hits = (*index)->Search(vs[123], 3);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 3u);
  EXPECT_EQ((*hits)[0].label, 124);
  EXPECT_NEAR((*hits)[0].score, 1.0, 1e-4);
  EXPECT_GE((*hits)[0].score, (*hits)[1].score);
}

TEST(DenseIndexTest, CosineNormalisesAndInnerProductDoesNot) {
  auto cos = DenseIndex::Create(2, Metric::kCosine, {}, 16);
  auto ip = DenseIndex::Create(2, Metric::kInnerProduct, {}, 16);
  for (auto* idx : {&cos, &ip}) {
    ASSERT_TRUE((**idx)->Add(1, std::vector<float>{10, 0}).ok());
    ASSERT_TRUE((**idx)->Add(2, std::vector<float>{0.6f, 0.8f}).ok());
  }
  std::vector<float> q{0.6f, 0.8f};
  EXPECT_EQ((*(*cos)->Search(q, 1))[0].label, 2);
  EXPECT_EQ((*(*ip)->Search(q, 1))[0].label, 1);  // 6 > 1
  EXPECT_NEAR((*(*ip)->Search(q, 1))[0].score, 6.0, 1e-4);
}

TEST(DenseIndexTest, RemoveHidesALabel) {
  auto index = DenseIndex::Create(4, Metric::kCosine, {}, 16);
  ASSERT_TRUE((*index)->Add(1, std::vector<float>{1, 0, 0, 0}).ok());
  ASSERT_TRUE((*index)->Add(2, std::vector<float>{0, 1, 0, 0}).ok());
  ASSERT_TRUE((*index)->Remove(1).ok());
  ASSERT_TRUE((*index)->Remove(99).ok());  // unknown: ignored
  auto hits = (*index)->Search(std::vector<float>{1, 0, 0, 0}, 5);
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].label, 2);
  EXPECT_EQ((*index)->Labels(), std::vector<int64_t>{2});
  EXPECT_FALSE((*index)->Add(3, std::vector<float>{1, 0}).ok());  // wrong dimension
  EXPECT_FALSE((*index)->Search(std::vector<float>{1}, 1).ok());
}

TEST(DenseIndexTest, SaveLoadRoundTripsWithWatermark) {
  std::string dir = TempDir("roundtrip");
  std::string path = dir + "/i.hnsw";
  auto index = DenseIndex::Create(8, Metric::kCosine, {}, 16);
  std::mt19937 rng(2);
  for (int i = 1; i <= 100; ++i) ASSERT_TRUE((*index)->Add(i, RandomUnit(rng, 8)).ok());
  ASSERT_TRUE((*index)->Remove(50).ok());
  ASSERT_TRUE((*index)->Save(path, 100).ok());
  int64_t wm = 0;
  auto loaded = DenseIndex::Load(path, 8, Metric::kCosine, {}, &wm);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(wm, 100);
  EXPECT_EQ((*loaded)->live_count(), 99u);
  EXPECT_FALSE(DenseIndex::Load(path, 16, Metric::kCosine, {}, &wm).ok());      // other dimension
  EXPECT_FALSE(DenseIndex::Load(path, 8, Metric::kInnerProduct, {}, &wm).ok());  // other metric
}

TEST(DenseIndexTest, CorruptOrMissingFilesAreRefusedNotCrashedOn) {
  std::string dir = TempDir("corrupt");
  std::string path = dir + "/i.hnsw";
  int64_t wm = 0;
  EXPECT_FALSE(DenseIndex::Load(path, 8, Metric::kCosine, {}, &wm).ok());  // missing
  auto index = DenseIndex::Create(8, Metric::kCosine, {}, 16);
  std::mt19937 rng(3);
  for (int i = 1; i <= 50; ++i) ASSERT_TRUE((*index)->Add(i, RandomUnit(rng, 8)).ok());
  ASSERT_TRUE((*index)->Save(path, 50).ok());
  {  // flip a byte
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  EXPECT_FALSE(DenseIndex::Load(path, 8, Metric::kCosine, {}, &wm).ok());
  ASSERT_TRUE((*index)->Save(path, 50).ok());
  std::filesystem::resize_file(path, 100);  // truncate
  EXPECT_FALSE(DenseIndex::Load(path, 8, Metric::kCosine, {}, &wm).ok());
  std::ofstream(path + ".meta") << "garbage";
  EXPECT_FALSE(DenseIndex::Load(path, 8, Metric::kCosine, {}, &wm).ok());
}

}  // namespace
}  // namespace llmesh::rag
