// Helpers shared by the model tests: the golden model, tiny synthesized
// models, and logit comparisons.
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/batch.h"
#include "llmesh/engine/forward.h"
#include "llmesh/engine/model.h"
#include "llmesh/engine/model_synth.h"

namespace llmesh::engine::testing {

inline std::string StoriesPath() {
  return std::string(LLMESH_SHARED_DIR) + "/models/stories260K.gguf";
}

inline std::unique_ptr<Model> LoadOrDie(const std::string& path) {
  auto m = Model::Load(path);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

// A file name in the test temp dir unique to this process: ctest runs each
// TEST as its own process, several at once.
// Removed at exit (mapped files stay readable until unmapped).
inline std::string TempPath(const std::string& name) {
  static std::vector<std::string>* files = [] {
    auto* v = new std::vector<std::string>();
    std::atexit([] {
      for (const std::string& f : *files) std::remove(f.c_str());
    });
    return v;
  }();
  files->push_back(::testing::TempDir() + "/llmesh_" + std::to_string(getpid()) + "_" + name);
  return files->back();
}

// A tiny custom shape: every row a multiple of 256 so all K-quants apply;
// GQA 2:1; vocabulary (512 tokens) from stories260K.
inline SynthShape TinyShape(Arch arch) {
  SynthShape s;
  s.name = "tiny";
  s.arch = arch;
  s.n_embd = 256;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 512;
  s.n_ctx = 128;
  s.rope_freq_base = arch == Arch::kQwen2 ? 1000000.0f : 10000.0f;
  s.tied_output = arch == Arch::kQwen2;
  return s;
}

// Writes a synthesized model to the test temp dir and returns its path.
inline std::string SynthTiny(Arch arch, gguf::GgmlType type, const std::string& tag,
                             bool pure = true, uint64_t seed = 7) {
  auto vocab = gguf::GgufFile::Open(StoriesPath());
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  SynthOptions o;
  o.shape = TinyShape(arch);
  o.type = type;
  o.pure = pure;
  o.vocab = vocab->get();
  o.seed = seed;
  o.n_threads = 2;
  const std::string path = TempPath("synth_" + tag + ".gguf");
  absl::Status s = SynthesizeModel(o, path);
  EXPECT_TRUE(s.ok()) << s;
  return path;
}

// Logits (n_vocab) at every position of `tokens` run as one prefill.
inline std::vector<std::vector<float>> PrefillAll(const Model& m, ThreadPool& pool,
                                                  const std::vector<TokenId>& tokens) {
  ForwardContext ctx(m, pool);
  auto kv = MakeKvCache(m, 256);
  Batch b;
  b.AddSequence(tokens, 0, 0, /*all_outputs=*/true);
  ForwardOutput out;
  absl::Status s = ctx.Decode(b, *kv, &out);
  EXPECT_TRUE(s.ok()) << s;
  std::vector<std::vector<float>> rows;
  for (int32_t i = 0; i < out.n_rows(); ++i)
    rows.emplace_back(out.Row(i).begin(), out.Row(i).end());
  return rows;
}

inline double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

inline float MaxAbsDiff(std::span<const float> a, std::span<const float> b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// max |a - b| / max |b|: an error normalised by the logits' scale.
inline double NormalisedMaxErr(std::span<const float> a, std::span<const float> b) {
  float scale = 0;
  for (float v : b) scale = std::max(scale, std::fabs(v));
  return MaxAbsDiff(a, b) / std::max(scale, 1e-6f);
}

inline int32_t ArgMaxOf(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace llmesh::engine::testing
