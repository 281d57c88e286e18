// Every decoder family against llama.cpp on ../shared/arch's files (written
// into the build tree by scripts/make_arch_models.sh, checksummed): the best
// id and every one of llama.cpp's top-64 logits at the end of the README's
// prompt; the fast path against the scalar reference past the sliding window;
// batched against alone; quantized copies against the F16 file; and files
// with a family's tensor missing or misshapen rejected by name.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/decoder_reference.h"
#include "llmesh/engine/model_quantize.h"
#include "llmesh/engine/sampling_basic.h"
#include "llmesh/tokenizer/tokenizer.h"
#include "model_test_util.h"

namespace llmesh::engine {
namespace {

using testing::LoadOrDie;
using testing::TempPath;

constexpr char kPrompt[] = "The quick brown fox jumps over the lazy dog. Once upon a time";

std::string ModelPath(const std::string& arch) {
  return std::string(LLMESH_ARCH_MODELS_DIR) + "/" + arch + "-f16.gguf";
}

std::vector<int32_t> PromptTokens(const Model& m) {
  auto tok = tokenizer::Tokenizer::FromGguf(m.file());
  EXPECT_TRUE(tok.ok()) << tok.status();
  auto ids = (*tok)->Encode(kPrompt, /*add_special=*/true, /*parse_special=*/false);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return *ids;
}

// As `llmesh logits` sizes it: the trained context, at most 4096.
int32_t ContextOf(const Model& m) {
  return static_cast<int32_t>(std::min<int64_t>(m.params().n_ctx_train, 4096));
}

// Logits at the last prompt position, fast path, one sequence.
std::vector<float> PromptLogits(const Model& m, ThreadPool& pool) {
  const std::vector<int32_t> prompt = PromptTokens(m);
  ForwardContext ctx(m, pool);
  auto kv = MakeKvCache(m, ContextOf(m), 1);
  Batch batch;
  batch.AddSequence(prompt, 0, 0);
  ForwardOutput out;
  EXPECT_TRUE(ctx.Decode(batch, *kv, &out).ok());
  const auto row = out.Row(0);
  return {row.begin(), row.end()};
}

struct RefLogit {
  int32_t id;
  float logit;
};

std::vector<RefLogit> LlamaCppTop64(const std::string& arch) {
  std::ifstream in(std::string(LLMESH_SHARED_DIR) + "/arch/reference/" + arch + ".top64.txt");
  std::vector<RefLogit> ref;
  RefLogit r;
  while (in >> r.id >> r.logit) ref.push_back(r);
  return ref;
}

class ArchFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchFamily, MatchesLlamaCppLogits) {
  auto m = LoadOrDie(ModelPath(GetParam()));
  ASSERT_NE(m, nullptr);
  const std::vector<RefLogit> ref = LlamaCppTop64(GetParam());
  ASSERT_EQ(ref.size(), 64u);
  ThreadPool pool(2);
  const std::vector<float> logits = PromptLogits(*m, pool);
  ASSERT_EQ(logits.size(), static_cast<size_t>(m->params().n_vocab));
  EXPECT_EQ(ArgMax(logits), ref[0].id);
  // Random weights give flat logits: hold each to 3% of the largest.
  const float tol = 0.03f * std::fabs(ref[0].logit);
  for (const RefLogit& r : ref) EXPECT_NEAR(logits[r.id], r.logit, tol) << "id " << r.id;
}

// Prompt then greedy tokens, well past gemma2/gemma3/olmo3's window of 8.
TEST_P(ArchFamily, FastPathMatchesReferencePastTheWindow) {
  auto m = LoadOrDie(ModelPath(GetParam()));
  ASSERT_NE(m, nullptr);
  std::vector<int32_t> tokens = PromptTokens(*m);
  const int32_t n_ctx = ContextOf(*m);
  DecoderReference ref(*m, 64);
  ThreadPool pool(2);
  ForwardContext ctx(*m, pool);
  auto kv = MakeKvCache(*m, n_ctx, 1);
  const size_t n_prompt = tokens.size();
  for (size_t pos = 0; pos < 40; ++pos) {
    const std::vector<float>& want = ref.Forward(tokens[pos], static_cast<int32_t>(pos));
    Batch b;
    b.Add(tokens[pos], static_cast<int32_t>(pos), 0, true);
    ForwardOutput out;
    ASSERT_TRUE(ctx.Decode(b, *kv, &out).ok());
    float max_abs = 0, max_diff = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      max_abs = std::max(max_abs, std::fabs(want[i]));
      max_diff = std::max(max_diff, std::fabs(want[i] - out.Row(0)[i]));
    }
    EXPECT_LT(max_diff, 2e-3f * std::max(1.0f, max_abs)) << "pos " << pos;
    if (pos + 1 >= n_prompt) tokens.push_back(ArgMax(want));
  }
}

// Three prompts of different lengths in one batch, then greedy steps
// together: the tokens of each equal its tokens alone.
TEST_P(ArchFamily, BatchedEqualsAlone) {
  auto m = LoadOrDie(ModelPath(GetParam()));
  ASSERT_NE(m, nullptr);
  const std::vector<int32_t> base = PromptTokens(*m);
  const std::vector<std::vector<int32_t>> prompts = {
      base, {base.begin(), base.begin() + 5}, {base.begin() + 2, base.end() - 3}};
  constexpr int kSteps = 12;
  ThreadPool pool(2);
  ForwardContext ctx(*m, pool);

  auto greedy_alone = [&](const std::vector<int32_t>& p) {
    auto kv = MakeKvCache(*m, 256, 1);
    Batch b;
    b.AddSequence(p, 0, 0);
    ForwardOutput out;
    std::vector<int32_t> gen;
    for (int s = 0; s < kSteps; ++s) {
      EXPECT_TRUE(ctx.Decode(b, *kv, &out).ok());
      gen.push_back(ArgMax(out.Row(0)));
      b.Clear();
      b.Add(gen.back(), static_cast<int32_t>(p.size()) + s, 0, true);
    }
    return gen;
  };

  auto kv = MakeKvCache(*m, 256, 3);
  Batch b;
  for (size_t i = 0; i < prompts.size(); ++i) b.AddSequence(prompts[i], 0, static_cast<SeqId>(i));
  std::vector<std::vector<int32_t>> gen(prompts.size());
  ForwardOutput out;
  for (int s = 0; s < kSteps; ++s) {
    ASSERT_TRUE(ctx.Decode(b, *kv, &out).ok());
    ASSERT_EQ(out.n_rows(), 3);
    b.Clear();
    for (size_t i = 0; i < prompts.size(); ++i) {
      gen[i].push_back(ArgMax(out.Row(static_cast<int32_t>(i))));
      b.Add(gen[i].back(), static_cast<int32_t>(prompts[i].size()) + s, static_cast<SeqId>(i), true);
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(gen[i], greedy_alone(prompts[i])) << "prompt " << i;
}

double Correlation(const std::vector<float>& a, const std::vector<float>& b) {
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= a.size(), mb /= b.size();
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += (a[i] - ma) * (b[i] - mb), aa += (a[i] - ma) * (a[i] - ma), bb += (b[i] - mb) * (b[i] - mb);
  }
  return ab / std::sqrt(aa * bb);
}

// llmesh quantize's Q8_0 and Q4_0 copies load, run on the fast path as the
// scalar reference runs them (same dequantized weights), and stay near the
// F16 logits. These random-weight models are flat (logits ~N(0, 0.3), top
// ~1.3) and sharp in attention, so 4-bit noise moves logits far more than on
// trained models: over the whole vocabulary, Q8_0 stays within 6% of the
// top logit of F16, and Q4_0's logits correlate with F16's at >= 0.85
// (measured 0.885-0.9996; Q8_0 max deviation 0.2-4%; fast path vs the
// reference on the same quantized file 0.1-2.6%).
TEST_P(ArchFamily, QuantizedCopiesStayClose) {
  auto f16 = LoadOrDie(ModelPath(GetParam()));
  ASSERT_NE(f16, nullptr);
  ThreadPool pool(2);
  const std::vector<float> want = PromptLogits(*f16, pool);
  const float top = *std::max_element(want.begin(), want.end());
  for (const gguf::GgmlType type : {gguf::GgmlType::kQ8_0, gguf::GgmlType::kQ4_0}) {
    const std::string name(gguf::ggml_type_name(type));
    const std::string out = TempPath(GetParam() + "-" + name + ".gguf");
    QuantizeOptions o;
    o.type = type;
    o.n_threads = 2;
    ASSERT_TRUE(QuantizeModel(ModelPath(GetParam()), out, o).ok());
    auto q = LoadOrDie(out);
    ASSERT_NE(q, nullptr);
    const std::vector<float> got = PromptLogits(*q, pool);

    // The reference on the same quantized weights, token by token.
    DecoderReference ref(*q, 64);
    const std::vector<int32_t> prompt = PromptTokens(*q);
    for (size_t pos = 0; pos + 1 < prompt.size(); ++pos) ref.Forward(prompt[pos], static_cast<int32_t>(pos));
    const std::vector<float>& ref_logits = ref.Forward(prompt.back(), static_cast<int32_t>(prompt.size() - 1));
    float fast_vs_ref = 0, vs_f16 = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      fast_vs_ref = std::max(fast_vs_ref, std::fabs(ref_logits[i] - got[i]));
      vs_f16 = std::max(vs_f16, std::fabs(want[i] - got[i]));
    }
    const double corr = Correlation(want, got);
    std::printf("%s %s: fast vs reference %.4f, vs F16 max %.4f (%.2f%% of %.3f), correlation %.4f\n",
                GetParam().c_str(), name.c_str(), fast_vs_ref, vs_f16, 100 * vs_f16 / top, top, corr);
    // Activations are quantized to 8 bits on the fast path only.
    EXPECT_LT(fast_vs_ref, 0.04f * top) << name;
    if (type == gguf::GgmlType::kQ8_0) {
      EXPECT_LT(vs_f16, 0.06f * top) << name;
    } else {
      EXPECT_GE(corr, 0.85) << name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ArchFamily,
                         ::testing::Values("qwen3", "gemma2", "gemma3", "phi3", "mistral3", "olmo2",
                                           "olmo3", "granite", "smollm3", "exaone4", "bitnet", "bitnet-scaled"),
                         [](const auto& info) {
                           std::string name = info.param;  // test names allow no '-'
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// BitNet's ternary weights (F16 {-1, 0, 1} x scale, or {-1, 0, 1} with a
// W.scale tensor) survive TQ1_0 and TQ2_0 exactly: both copies give the same
// logits (up to float summation order), and stay near F16's (only the
// activations' 8 bits and the Q6_K tied embeddings differ).
TEST(ArchFamilyBitnet, TernaryCopiesAgreeAndStayNearF16) {
  ThreadPool pool(2);
  for (const std::string arch : {"bitnet", "bitnet-scaled"}) {
    auto f16 = LoadOrDie(ModelPath(arch));
    ASSERT_NE(f16, nullptr);
    const std::vector<float> want = PromptLogits(*f16, pool);
    const float top = *std::max_element(want.begin(), want.end());
    std::vector<std::vector<float>> got;
    for (const gguf::GgmlType type : {gguf::GgmlType::kTQ1_0, gguf::GgmlType::kTQ2_0}) {
      const std::string out = TempPath(arch + "-" + std::string(gguf::ggml_type_name(type)) + ".gguf");
      QuantizeOptions o;
      o.type = type;
      o.n_threads = 2;
      ASSERT_TRUE(QuantizeModel(ModelPath(arch), out, o).ok());
      auto q = LoadOrDie(out);
      ASSERT_NE(q, nullptr);
      EXPECT_EQ(q->layers()[0].wq.type, type);
      EXPECT_EQ(q->layers()[3].w_down.type, type);
      EXPECT_EQ(q->tok_embd().type, gguf::GgmlType::kQ6_K);  // tied: the output's type
      got.push_back(PromptLogits(*q, pool));
    }
    float tq1_vs_tq2 = 0, vs_f16 = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      tq1_vs_tq2 = std::max(tq1_vs_tq2, std::fabs(got[0][i] - got[1][i]));
      vs_f16 = std::max(vs_f16, std::fabs(got[1][i] - want[i]));
    }
    const double corr = Correlation(want, got[1]);
    std::printf("%s: TQ1_0 vs TQ2_0 max %.6f; vs F16 max %.4f (%.2f%% of %.3f), correlation %.4f\n", arch.c_str(),
                tq1_vs_tq2, vs_f16, 100 * vs_f16 / top, top, corr);
    // Equal integer block sums; the lanes they are spread over (and so the
    // float summation order) differ between the two kernels.
    EXPECT_LT(tq1_vs_tq2, 1e-5f * top) << arch;
    EXPECT_LT(vs_f16, 0.06f * top) << arch;
    EXPECT_GE(corr, 0.99) << arch;
    EXPECT_EQ(ArgMax(got[1]), ArgMax(want)) << arch;
  }
}

std::string FileBytes(const std::string& arch) {
  std::ifstream in(ModelPath(arch), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string WriteTemp(const std::string& bytes, const std::string& name) {
  const std::string path = TempPath(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// A copy of `arch`'s file with the first occurrence of `from` in its header
// replaced by `to` (same length): a tensor renamed, so missing.
std::string PatchedCopy(const std::string& arch, const std::string& from, const std::string& to) {
  std::string bytes = FileBytes(arch);
  const size_t at = bytes.find(from);
  EXPECT_NE(at, std::string::npos);
  bytes.replace(at, from.size(), to);
  return WriteTemp(bytes, arch + "-patched.gguf");
}

// A copy of `arch`'s file with the `T` stored right after the first
// occurrence of `name` plus `skip` bytes (a tensor's ne[0], a key's value)
// checked to be `was` and set to `now`.
template <typename T>
std::string ValuePatchedCopy(const std::string& arch, const std::string& name, size_t skip, T was, T now) {
  std::string bytes = FileBytes(arch);
  const size_t at = bytes.find(name);
  EXPECT_NE(at, std::string::npos);
  T v{};
  std::memcpy(&v, bytes.data() + at + name.size() + skip, sizeof(T));
  EXPECT_EQ(v, was);
  std::memcpy(bytes.data() + at + name.size() + skip, &now, sizeof(T));
  return WriteTemp(bytes, arch + "-value-patched.gguf");
}

TEST(ArchFamilyLoad, MissingFamilyTensorIsNamed) {
  // qwen3's per-head q norm; olmo2's post-FFN norm; phi3's fused qkv.
  for (const auto& [arch, name] : {std::pair{"qwen3", "blk.0.attn_q_norm.weight"},
                                   std::pair{"olmo2", "blk.1.post_ffw_norm.weight"},
                                   std::pair{"gemma2", "blk.2.post_attention_norm.weight"},
                                   std::pair{"bitnet", "blk.1.ffn_sub_norm.weight"}}) {
    std::string renamed = name;
    renamed[renamed.size() - 8] = 'X';  // "...norm.Xeight"
    auto m = Model::Load(PatchedCopy(arch, name, renamed));
    ASSERT_FALSE(m.ok()) << arch;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find(name), std::string_view::npos) << m.status();
  }
}

TEST(ArchFamilyLoad, WrongShapeIsNamedWithTheExpectedShape) {
  // qwen3's k norm is (head_dim = 64): claim 32 elements instead. In the
  // tensor info the name is followed by n_dims (u32) and ne[0] (u64).
  const std::string name = "blk.3.attn_k_norm.weight";
  auto m = Model::Load(ValuePatchedCopy<uint64_t>("qwen3", name, 4, 64, 32));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(name), std::string_view::npos) << m.status();
  EXPECT_NE(m.status().message().find("expected [64]"), std::string_view::npos) << m.status();
}

TEST(ArchFamilyLoad, BadFamilyMetadataIsRejectedByKey) {
  // gemma2's attention soft-cap 4.0 made negative (the value follows the
  // key and its u32 type).
  const std::string key = "gemma2.attn_logit_softcapping";
  auto m = Model::Load(ValuePatchedCopy<float>("gemma2", key, 4, 4.0f, -4.0f));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find(key), std::string_view::npos) << m.status();
}

TEST(ArchFamilyLoad, Phi3SwitchesToLongRopeFactorsPastTheOriginalContext) {
  auto m = LoadOrDie(ModelPath("phi3"));
  ASSERT_NE(m, nullptr);
  const int64_t orig = m->params().n_ctx_orig_yarn;
  ASSERT_EQ(orig, 4096);
  const RopeParams short_ctx = m->LayerRope(0, static_cast<int32_t>(orig));
  const RopeParams long_ctx = m->LayerRope(0, static_cast<int32_t>(orig) + 1);
  ASSERT_NE(short_ctx.freq_factors, nullptr);
  ASSERT_NE(long_ctx.freq_factors, nullptr);
  EXPECT_NE(short_ctx.freq_factors, long_ctx.freq_factors);
  EXPECT_EQ(m->file().FindTensor("rope_factors_long.weight")->data,
            static_cast<const void*>(long_ctx.freq_factors));
  EXPECT_NEAR(short_ctx.attn_factor, 1.1902f, 1e-3f);  // sqrt(1 + ln(131072/4096) / ln(4096))
}

TEST(ArchFamilyLoad, UnknownArchitectureListsTheFamilies) {
  // The first "granite" in the file is general.architecture's value.
  auto m = Model::Load(PatchedCopy("granite", "granite", "granitX"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* want : {"unknown architecture 'granitX'", "qwen3", "gemma3", "exaone4"}) {
    EXPECT_NE(m.status().message().find(want), std::string_view::npos) << m.status();
  }
}

}  // namespace
}  // namespace llmesh::engine
