#include "llmesh/rag/dense_index.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

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

// Exact top-k labels (1-based, as added below) by brute force over `base`,
// skipping `dead`.
std::vector<int64_t> ExactTopK(const std::vector<std::vector<float>>& base, const std::vector<float>& q, size_t k,
                               const std::set<int64_t>& dead = {}) {
  std::vector<std::pair<float, int64_t>> all;
  for (size_t i = 0; i < base.size(); ++i) {
    int64_t label = static_cast<int64_t>(i) + 1;
    if (dead.count(label)) continue;
    float dot = 0;
    for (size_t d = 0; d < q.size(); ++d) dot += base[i][d] * q[d];
    all.emplace_back(-dot, label);
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> out;
  for (size_t i = 0; i < std::min(k, all.size()); ++i) out.push_back(all[i].second);
  return out;
}

std::set<int64_t> LabelSet(const std::vector<DenseHit>& hits) {
  std::set<int64_t> out;
  for (const auto& h : hits) out.insert(h.label);
  return out;
}

// Default parameters on 2000 random 64-d unit vectors: HNSW must agree with
// brute force on nearly all of the top 10 (a mislabelled, unnormalised or
// mis-signed index scores near 0 here).
TEST(DenseIndexTest, RecallAt10MatchesBruteForce) {
  constexpr int kDim = 64, kN = 2000;
  auto index = DenseIndex::Create(kDim, Metric::kCosine, {}, 16);  // grows through several resizes
  ASSERT_TRUE(index.ok());
  std::mt19937 rng(11);
  std::vector<std::vector<float>> base;
  for (int i = 0; i < kN; ++i) {
    base.push_back(RandomUnit(rng, kDim));
    std::vector<float> scaled = base.back();
    for (auto& x : scaled) x *= 3.0f;  // cosine: the index normalises what it stores
    ASSERT_TRUE((*index)->Add(i + 1, scaled).ok());
  }
  double found = 0, total = 0;
  for (int q = 0; q < 100; ++q) {
    std::vector<float> qv = RandomUnit(rng, kDim);
    for (auto& x : qv) x *= 0.5f;  // ... and the query
    auto hits = (*index)->Search(qv, 10);
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), 10u);
    for (size_t i = 1; i < hits->size(); ++i) EXPECT_GE((*hits)[i - 1].score, (*hits)[i].score);
    Normalize(qv);
    auto exact = ExactTopK(base, qv, 10);
    auto got = LabelSet(*hits);
    for (int64_t label : exact) found += got.count(label);
    total += 10;
    // The best hit's score is its cosine similarity.
    float dot = 0;
    for (int d = 0; d < kDim; ++d) dot += base[static_cast<size_t>((*hits)[0].label - 1)][d] * qv[d];
    EXPECT_NEAR((*hits)[0].score, dot, 1e-4);
  }
  std::printf("dense recall@10 vs brute force: %.3f\n", found / total);
  EXPECT_GE(found / total, 0.9);
}

// k >= live count: every live label comes back, in exact order, whatever the
// graph looks like - after deletions, with duplicate vectors, and after a
// save/load round trip.
TEST(DenseIndexTest, KAtLeastLiveCountIsExactAfterDeletesAndReload) {
  constexpr int kDim = 16;
  auto index = DenseIndex::Create(kDim, Metric::kCosine, {}, 16);
  ASSERT_TRUE(index.ok());
  std::mt19937 rng(5);
  std::vector<std::vector<float>> base;
  for (int i = 0; i < 60; ++i) {
    // Every third vector repeats an earlier one: duplicates prune HNSW links.
    base.push_back(i % 3 == 2 ? base[static_cast<size_t>(i - 1)] : RandomUnit(rng, kDim));
    ASSERT_TRUE((*index)->Add(i + 1, base.back()).ok());
  }
  std::set<int64_t> dead;
  for (int64_t label : {1, 4, 5, 17, 30, 59}) {
    ASSERT_TRUE((*index)->Remove(label).ok());
    dead.insert(label);
  }
  auto check = [&](const DenseIndex& idx, const char* when) {
    EXPECT_EQ(idx.live_count(), 54u) << when;
    for (int q = 0; q < 20; ++q) {
      std::vector<float> qv = RandomUnit(rng, kDim);
      for (size_t k : {54u, 55u, 100u}) {
        auto hits = idx.Search(qv, k);
        ASSERT_TRUE(hits.ok()) << when;
        ASSERT_EQ(hits->size(), 54u) << when << " k=" << k;
        auto exact = ExactTopK(base, qv, 54, dead);
        EXPECT_EQ(LabelSet(*hits), std::set<int64_t>(exact.begin(), exact.end())) << when;
        for (const auto& h : *hits) EXPECT_FALSE(dead.count(h.label)) << when;
        for (size_t i = 1; i < hits->size(); ++i) EXPECT_GE((*hits)[i - 1].score, (*hits)[i].score) << when;
      }
      // And k below the live count still gives exactly k.
      auto some = idx.Search(qv, 10);
      ASSERT_TRUE(some.ok());
      EXPECT_EQ(some->size(), 10u) << when;
    }
  };
  check(**index, "after deletes");
  std::string path = TempDir("exact") + "/i.hnsw";
  ASSERT_TRUE((*index)->Save(path, 60).ok());
  int64_t wm = 0;
  auto loaded = DenseIndex::Load(path, kDim, Metric::kCosine, {}, &wm);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(wm, 60);
  EXPECT_EQ((*loaded)->deleted_count(), 6u);
  check(**loaded, "after reload");
  // Re-adding a deleted label revives it.
  ASSERT_TRUE((*loaded)->Add(4, base[3]).ok());
  dead.erase(4);
  auto all = (*loaded)->Search(base[3], 1000);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 55u);
  EXPECT_TRUE(LabelSet(*all).count(4));
}

// Every way the collection changes its index, mixed at random, with M = 4 so
// that most nodes have upper levels and their lists fill after a few inserts:
// new labels past the capacity (resizes), replacements (hnswlib's update
// path), removals, re-adds of removed labels, a stretch that deletes most of
// the index, a save and load halfway (link lists sized as the file says),
// and searches throughout, then from several threads at once. Under
// AddressSanitizer this is what hnswlib's SSE prefetches tripped on: a
// heap-buffer-overflow reading past an upper-level link list in
// searchBaseLayer, from addPoint.
TEST(DenseIndexTest, EveryInsertPatternIsMemorySafe) {
  constexpr int kDim = 24;  // not a multiple of 16: the distance's tail loop runs too
  HnswOptions options;
  options.m = 4;
  options.ef_construction = 32;
  options.ef_search = 16;
  auto created = DenseIndex::Create(kDim, Metric::kCosine, options, 16);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<DenseIndex> index = std::move(*created);
  std::mt19937 rng(21);
  std::map<int64_t, std::vector<float>> live, dead;
  int64_t next_label = 1;
  auto pick = [&](const std::map<int64_t, std::vector<float>>& m) {
    auto it = m.begin();
    std::advance(it, std::uniform_int_distribution<size_t>(0, m.size() - 1)(rng));
    return it->first;
  };
  auto check = [&](const char* when) {
    ASSERT_EQ(index->live_count(), live.size()) << when;
    auto labels = index->Labels();
    std::set<int64_t> got(labels.begin(), labels.end()), want;
    for (const auto& [label, v] : live) want.insert(label);
    ASSERT_EQ(got, want) << when;
    if (live.empty()) return;
    int64_t probe = pick(live);
    auto all = index->Search(live[probe], live.size());  // exact: itself first
    ASSERT_TRUE(all.ok()) << when;
    ASSERT_EQ(all->size(), live.size()) << when;
    EXPECT_NEAR((*all)[0].score, 1.0, 1e-4) << when;
    auto some = index->Search(RandomUnit(rng, kDim), 5);
    ASSERT_TRUE(some.ok()) << when;
    EXPECT_EQ(some->size(), std::min<size_t>(5, live.size())) << when;
    for (const auto& h : *some) EXPECT_TRUE(live.count(h.label)) << when << " label " << h.label;
  };
  auto step = [&](bool mostly_delete) {
    int op = std::uniform_int_distribution<int>(0, 9)(rng);
    if (mostly_delete && op < 8) op = 9;
    if (op < 5 || live.empty()) {  // a new label
      live[next_label] = RandomUnit(rng, kDim);
      ASSERT_TRUE(index->Add(next_label, live[next_label]).ok());
      ++next_label;
    } else if (op < 7) {  // replace a live label's vector
      int64_t label = pick(live);
      live[label] = RandomUnit(rng, kDim);
      ASSERT_TRUE(index->Add(label, live[label]).ok());
    } else if (op < 8 && !dead.empty()) {  // bring a removed label back, with a new vector
      int64_t label = pick(dead);
      dead.erase(label);
      live[label] = RandomUnit(rng, kDim);
      ASSERT_TRUE(index->Add(label, live[label]).ok());
    } else {
      int64_t label = pick(live);
      dead[label] = live[label];
      live.erase(label);
      ASSERT_TRUE(index->Remove(label).ok());
    }
  };
  for (int i = 0; i < 1500; ++i) {
    ASSERT_NO_FATAL_FAILURE(step(false));
    if (i % 100 == 0) {
      ASSERT_NO_FATAL_FAILURE(check("mixed"));
    }
  }
  while (live.size() > 20) ASSERT_NO_FATAL_FAILURE(step(true));
  ASSERT_NO_FATAL_FAILURE(check("after deleting most"));

  std::string path = TempDir("patterns") + "/i.hnsw";
  ASSERT_TRUE(index->Save(path, next_label).ok());
  int64_t wm = 0;
  auto loaded = DenseIndex::Load(path, kDim, Metric::kCosine, options, &wm);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  index = std::move(*loaded);
  ASSERT_NO_FATAL_FAILURE(check("after reload"));
  for (int i = 0; i < 1500; ++i) {
    ASSERT_NO_FATAL_FAILURE(step(false));
    if (i % 100 == 0) {
      ASSERT_NO_FATAL_FAILURE(check("mixed after reload"));
    }
  }

  // Searches run concurrently with each other (the collection's reader lock).
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 400; ++i) queries.push_back(RandomUnit(rng, kDim));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < queries.size(); i += 4) {
        auto hits = index->Search(queries[i], 1 + i % 12);
        if (!hits.ok() || hits->size() != std::min<size_t>(1 + i % 12, live.size())) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace llmesh::rag
