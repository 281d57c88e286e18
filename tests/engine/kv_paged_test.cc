// PagedKvCache: block accounting and eviction on a toy geometry, then the
// real forward pass on stories260K (paged == contiguous, prefix hits,
// partial-block divergence, fork), then a randomised stress run against a
// reference model that checks refcounts and every cached K/V row.
#include "llmesh/engine/kv_paged.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/forward.h"
#include "model_test_util.h"

namespace llmesh::engine {
namespace {

using testing::LoadOrDie;
using testing::MaxAbsDiff;
using testing::StoriesPath;

// Same kernels over the same batch shapes: the cache layout must not change
// a single bit, but allow float noise rather than assert bit equality.
constexpr float kSameShapeTol = 1e-6f;
// One prefill vs the same tokens split over two batches: summation order may
// differ in the matmuls.
constexpr float kBatchingTol = 1e-4f;

// ---------------------------------------------------------------- toy geometry

// 1 layer, 2-float K/V rows, blocks of 4 positions.
constexpr int32_t kBs = 4;
PagedKvCache Toy(int32_t n_blocks, int32_t n_ctx = 64) {
  return PagedKvCache(/*n_layer=*/1, /*n_embd_k=*/2, /*n_embd_v=*/2, n_ctx, kBs, n_blocks);
}

std::vector<TokenId> Range(TokenId first, int32_t n) {
  std::vector<TokenId> t(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) t[i] = first + i;
  return t;
}

// Appends `tokens` to `seq` as a Decode would (Prepare, write rows) and
// records them; K row = (token, position).
absl::Status Append(PagedKvCache& kv, SeqId seq, const std::vector<TokenId>& tokens) {
  const int32_t pos0 = kv.SeqLength(seq);
  if (auto s = kv.Prepare(seq, pos0 + static_cast<int32_t>(tokens.size())); !s.ok()) return s;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t p = pos0 + static_cast<int32_t>(i);
    float* k = kv.KRow(seq, 0, p);
    k[0] = static_cast<float>(tokens[i]);
    k[1] = static_cast<float>(p);
    float* v = kv.VRow(seq, 0, p);
    v[0] = -static_cast<float>(tokens[i]);
    v[1] = -static_cast<float>(p);
  }
  return kv.SetTokens(seq, pos0, tokens);
}

void ExpectSums(const PagedKvCache& kv) {
  const KvStats st = kv.stats();
  EXPECT_EQ(st.blocks_used + st.blocks_cached + st.blocks_free, st.blocks_total);
  EXPECT_TRUE(kv.CheckInvariants().ok()) << kv.CheckInvariants();
}

TEST(KvPaged, BudgetGivesExactBlockCount) {
  auto m = LoadOrDie(StoriesPath());
  ASSERT_NE(m, nullptr);
  const ModelParams& hp = m->params();
  const size_t per_block = PagedKvCache::BlockBytes(hp.n_layer, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(), 16);
  // 5 layers * 16 positions * (32 + 32) floats * 4 bytes.
  EXPECT_EQ(per_block, 5u * 16 * 64 * 4);
  auto kv = MakePagedKvCache(*m, 512, 10 * per_block + per_block - 1, 16);
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ((*kv)->stats().blocks_total, 10);
  EXPECT_EQ((*kv)->stats().blocks_free, 10);
  EXPECT_EQ((*kv)->BytesAllocated(), 10 * per_block);
  EXPECT_EQ(MakePagedKvCache(*m, 512, per_block - 1, 16).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakePagedKvCache(*m, 512, per_block, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KvPaged, AllocationStopsAtBudgetAndFreeingReturnsBlocks) {
  PagedKvCache kv = Toy(6);
  ASSERT_TRUE(kv.Prepare(0, 9).ok());  // 3 blocks
  ASSERT_TRUE(kv.Prepare(1, 8).ok());  // 2 blocks
  EXPECT_EQ(kv.stats().blocks_used, 5);
  EXPECT_EQ(kv.Prepare(2, 5).code(), absl::StatusCode::kResourceExhausted);  // needs 2, 1 left
  EXPECT_EQ(kv.SeqLength(2), 0);
  EXPECT_EQ(kv.stats().blocks_used, 5);  // the failed request left nothing behind
  ASSERT_TRUE(kv.Prepare(0, 16).ok());   // a fourth block for seq 0: the last one
  EXPECT_EQ(kv.stats().blocks_free, 0);
  EXPECT_EQ(kv.Prepare(0, 17).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(kv.SeqLength(0), 16);
  EXPECT_EQ(kv.Prepare(3, 65).code(), absl::StatusCode::kResourceExhausted);  // > n_ctx
  ExpectSums(kv);
  ASSERT_TRUE(kv.Prepare(0, 2).ok());  // truncation frees blocks
  EXPECT_EQ(kv.stats().blocks_used, 3);
  kv.RemoveSeq(1);
  kv.RemoveSeq(0);
  EXPECT_EQ(kv.stats().blocks_free, 6);  // no tokens given: nothing worth caching
  ExpectSums(kv);
  EXPECT_LE(kv.BytesAllocated(), 6u * PagedKvCache::BlockBytes(1, 2, 2, kBs));
}

TEST(KvPaged, RemovedFullBlocksStayCachedAndEvictLru) {
  PagedKvCache kv = Toy(6);
  // Three one-block prompts, removed in order 0, 1, 2: all stay cached.
  for (SeqId s = 0; s < 3; ++s) ASSERT_TRUE(Append(kv, s, Range(100 * (s + 1), kBs)).ok());
  for (SeqId s = 0; s < 3; ++s) kv.RemoveSeq(s);
  EXPECT_EQ(kv.stats().blocks_cached, 3);
  EXPECT_EQ(kv.stats().blocks_free, 3);
  ExpectSums(kv);
  // Four blocks: the three free ones, then the least recently used cached one.
  ASSERT_TRUE(kv.Prepare(10, 4 * kBs).ok());
  EXPECT_EQ(kv.stats().blocks_cached, 2);
  std::vector<TokenId> p0 = Range(100, kBs + 1), p1 = Range(200, kBs + 1), p2 = Range(300, kBs + 1);
  EXPECT_EQ(kv.AttachPrefix(20, p0), 0);  // evicted
  EXPECT_EQ(kv.AttachPrefix(21, p1), kBs);
  EXPECT_EQ(kv.stats().prefix_query_tokens, 2 * (kBs + 1));
  EXPECT_EQ(kv.stats().prefix_hit_tokens, kBs);
  // Seq 21 now uses prompt 1's block: the next eviction takes prompt 2's.
  ASSERT_TRUE(kv.Prepare(22, 1).ok());
  EXPECT_EQ(kv.AttachPrefix(23, p2), 0);
  EXPECT_EQ(kv.Prepare(24, 1).code(), absl::StatusCode::kResourceExhausted);
  ExpectSums(kv);
  kv.RemoveSeq(21);
  EXPECT_EQ(kv.stats().blocks_cached, 1);
  ASSERT_TRUE(kv.Prepare(24, 1).ok());  // evicts it
  EXPECT_EQ(kv.stats().blocks_cached, 0);
  ExpectSums(kv);
}

TEST(KvPaged, ParentOutlivesItsCachedChild) {
  PagedKvCache kv = Toy(4);
  const std::vector<TokenId> prompt = Range(10, 2 * kBs);
  ASSERT_TRUE(Append(kv, 0, prompt).ok());
  const std::vector<int32_t> table = kv.BlockTable(0);  // P, C
  ASSERT_EQ(table.size(), 2u);
  // Rewriting position 0 in place copies P (it is indexed) and releases it
  // while C is still in use: P becomes the older cached block...
  kv.KRow(0, 0, 0)[0] = 1.0f;
  EXPECT_NE(kv.BlockTable(0)[0], table[0]);
  EXPECT_TRUE(kv.IsCached(table[0]));
  EXPECT_EQ(kv.RefCount(table[0]), 0);
  kv.RemoveSeq(0);
  EXPECT_EQ(kv.stats().blocks_cached, 2);
  ExpectSums(kv);
  // ...yet C goes first: evicting P would strand C, unreachable from a root.
  ASSERT_TRUE(kv.Prepare(1, 3 * kBs).ok());
  EXPECT_FALSE(kv.IsCached(table[1]));
  EXPECT_TRUE(kv.IsCached(table[0]));
  EXPECT_EQ(kv.AttachPrefix(2, Range(10, 3 * kBs)), kBs);  // P still serves
  kv.RemoveSeq(2);
  ASSERT_TRUE(kv.Prepare(3, 1).ok());
  EXPECT_FALSE(kv.IsCached(table[0]));
  ExpectSums(kv);
}

TEST(KvPaged, SetTokensChecksRangesAndSharedTokens) {
  PagedKvCache kv = Toy(8);
  ASSERT_TRUE(Append(kv, 0, Range(1, 6)).ok());
  EXPECT_EQ(kv.SetTokens(0, 7, Range(1, 2)).code(), absl::StatusCode::kInvalidArgument);  // a hole
  EXPECT_EQ(kv.SetTokens(0, 63, Range(1, 2)).code(), absl::StatusCode::kInvalidArgument);  // > n_ctx
  // Tokens may come before their K/V: a pending one past the end is fine.
  EXPECT_TRUE(kv.SetTokens(0, 6, Range(7, 1)).ok());
  EXPECT_EQ(kv.SeqLength(0), 6);
  ASSERT_TRUE(kv.Fork(0, 1).ok());
  // Block 0 is shared (and indexed): its tokens cannot be changed.
  EXPECT_EQ(kv.SetTokens(1, 0, Range(50, 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(kv.SetTokens(1, 0, Range(1, 2)).ok());
  EXPECT_EQ(kv.Fork(0, 1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(kv.Fork(7, 2).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(kv.AttachPrefix(1, Range(1, 9)), 0);  // not a new sequence
  ExpectSums(kv);
}

// ------------------------------------------------------------ stories260K

std::vector<TokenId> RandomTokens(uint32_t seed, int32_t n) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<TokenId> d(3, 511);
  std::vector<TokenId> t(static_cast<size_t>(n));
  for (TokenId& x : t) x = d(rng);
  return t;
}

std::vector<TokenId> Cat(std::vector<TokenId> a, const std::vector<TokenId>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<TokenId> Slice(const std::vector<TokenId>& t, size_t b, size_t e) {
  return {t.begin() + static_cast<std::ptrdiff_t>(b), t.begin() + static_cast<std::ptrdiff_t>(e)};
}

class KvPagedModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = LoadOrDie(StoriesPath()).release(); }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(model_, nullptr); }

  std::unique_ptr<PagedKvCache> Paged(int32_t block_size = 16, int32_t n_blocks = 64) {
    const ModelParams& hp = model_->params();
    auto kv = MakePagedKvCache(*model_, 512,
                               n_blocks * PagedKvCache::BlockBytes(hp.n_layer, hp.n_embd_k_gqa(),
                                                                   hp.n_embd_v_gqa(), block_size),
                               block_size);
    EXPECT_TRUE(kv.ok()) << kv.status();
    return kv.ok() ? std::move(*kv) : nullptr;
  }

  // Decodes tokens at positions pos0.. of `seq`, records them when `kv` is
  // paged (before the Decode with tokens_first, as a scheduler may), and
  // returns the last token's logits.
  std::vector<float> Run(KvCache& kv, SeqId seq, const std::vector<TokenId>& tokens, int32_t pos0,
                         bool tokens_first = false) {
    auto* paged = dynamic_cast<PagedKvCache*>(&kv);
    if (paged && tokens_first) {
      absl::Status s = paged->SetTokens(seq, pos0, tokens);
      EXPECT_TRUE(s.ok()) << s;
    }
    Batch b;
    b.AddSequence(tokens, pos0, seq);
    ForwardOutput out;
    absl::Status s = ctx_.Decode(b, kv, &out);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) return {};
    if (paged && !tokens_first) {
      s = paged->SetTokens(seq, pos0, tokens);
      EXPECT_TRUE(s.ok()) << s;
    }
    return {out.Row(0).begin(), out.Row(0).end()};
  }

  // Logits of `tokens` run cold on a contiguous cache, split at `split`.
  std::vector<float> Cold(const std::vector<TokenId>& tokens, size_t split) {
    auto kv = MakeKvCache(*model_, 512);
    if (split > 0) Run(*kv, 0, Slice(tokens, 0, split), 0);
    return Run(*kv, 0, Slice(tokens, split, tokens.size()), static_cast<int32_t>(split));
  }

  // Every K and V float of positions [0, n) of `seq`, all layers.
  std::vector<float> Snapshot(const KvCache& kv, SeqId seq, int32_t n) {
    std::vector<float> all;
    for (int64_t l = 0; l < kv.n_layer(); ++l) {
      for (int32_t p0 = 0; p0 < n; p0 += kv.span_size()) {
        const KvSpan sp = kv.Span(seq, l, p0, std::min(kv.span_size(), n - p0));
        for (int32_t r = 0; r < sp.n; ++r) {
          all.insert(all.end(), sp.k + r * sp.k_stride, sp.k + r * sp.k_stride + kv.n_embd_k());
          all.insert(all.end(), sp.v + r * sp.v_stride, sp.v + r * sp.v_stride + kv.n_embd_v());
        }
      }
    }
    return all;
  }

  static Model* model_;
  ThreadPool pool_{2};
  ForwardContext ctx_{*model_, pool_};
};
Model* KvPagedModel::model_ = nullptr;

TEST_F(KvPagedModel, SingleSequencesMatchContiguous) {
  const std::vector<std::vector<TokenId>> prompts = {
      {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401,
       396, 267, 337},
      RandomTokens(1, 50), RandomTokens(2, 100), RandomTokens(3, 16)};
  for (int32_t bs : {16, 32, 5}) {
    for (const auto& prompt : prompts) {
      auto paged = Paged(bs);
      auto cont = MakeKvCache(*model_, 512);
      std::vector<float> a = Run(*paged, 0, prompt, 0), b = Run(*cont, 0, prompt, 0);
      ASSERT_LE(MaxAbsDiff(a, b), kSameShapeTol) << "block " << bs;
      // Greedy decode steps cross block boundaries.
      auto pos = static_cast<int32_t>(prompt.size());
      for (int step = 0; step < 20; ++step, ++pos) {
        const TokenId next = testing::ArgMaxOf(a);
        a = Run(*paged, 0, {next}, pos);
        b = Run(*cont, 0, {next}, pos);
        ASSERT_LE(MaxAbsDiff(a, b), kSameShapeTol) << "block " << bs << " step " << step;
      }
      EXPECT_TRUE(paged->CheckInvariants().ok());
    }
  }
}

TEST_F(KvPagedModel, BatchedSequencesMatchContiguous) {
  auto paged = Paged(16);
  auto cont = MakeKvCache(*model_, 512);
  const std::vector<std::vector<TokenId>> prompts = {RandomTokens(4, 37), RandomTokens(5, 9),
                                                     RandomTokens(6, 64)};
  Batch b;
  for (size_t s = 0; s < prompts.size(); ++s) b.AddSequence(prompts[s], 0, static_cast<SeqId>(s));
  for (int step = 0; step < 10; ++step) {
    ForwardOutput pa, ca;
    ASSERT_TRUE(ctx_.Decode(b, *paged, &pa).ok());
    ASSERT_TRUE(ctx_.Decode(b, *cont, &ca).ok());
    ASSERT_EQ(pa.n_rows(), 3);
    for (int32_t r = 0; r < 3; ++r) ASSERT_LE(MaxAbsDiff(pa.Row(r), ca.Row(r)), kSameShapeTol);
    Batch next;
    for (int32_t r = 0; r < 3; ++r) {
      const int32_t i = pa.batch_index[r];
      next.Add(testing::ArgMaxOf(pa.Row(r)), b.pos[i] + 1, b.seq_id[i], true);
    }
    b = next;
  }
}

class KvPagedPrefix : public KvPagedModel, public ::testing::WithParamInterface<bool> {};

// Param: tokens recorded before (true) or after (false) the Decode.
TEST_P(KvPagedPrefix, PrefixOfRemovedPromptIsReused) {
  const bool tokens_first = GetParam();
  auto kv = Paged(16);
  const std::vector<TokenId> a = RandomTokens(7, 37);
  const std::vector<TokenId> ab = Cat(a, RandomTokens(8, 20));
  Run(*kv, 0, a, 0, tokens_first);
  const std::vector<int32_t> a_blocks = kv->BlockTable(0);
  kv->RemoveSeq(0);
  EXPECT_EQ(kv->stats().blocks_cached, 2);  // two full blocks; the partial third is freed
  EXPECT_EQ(kv->stats().blocks_used, 0);

  const int32_t reused = kv->AttachPrefix(1, ab);
  EXPECT_EQ(reused, 32);
  EXPECT_EQ(kv->stats().prefix_hit_tokens, 32);
  EXPECT_EQ(kv->stats().prefix_query_tokens, static_cast<int64_t>(ab.size()));
  EXPECT_EQ(kv->stats().blocks_used, 2);
  const std::vector<int32_t> table = kv->BlockTable(1);
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[0], a_blocks[0]);
  EXPECT_EQ(table[1], a_blocks[1]);

  const std::vector<float> warm = Run(*kv, 1, Slice(ab, reused, ab.size()), reused, tokens_first);
  EXPECT_LE(MaxAbsDiff(warm, Cold(ab, reused)), kSameShapeTol);
  EXPECT_LE(MaxAbsDiff(warm, Cold(ab, 0)), kBatchingTol);
  EXPECT_TRUE(kv->CheckInvariants().ok()) << kv->CheckInvariants();
  // A running sequence's blocks serve too: three more, all full, of seq 1.
  EXPECT_EQ(kv->AttachPrefix(2, Cat(ab, {5})), 48);
}
INSTANTIATE_TEST_SUITE_P(TokenOrder, KvPagedPrefix, ::testing::Bool());

TEST_F(KvPagedModel, FullyCachedPromptStillComputesItsLastToken) {
  auto kv = Paged(16);
  const std::vector<TokenId> a = RandomTokens(9, 32);  // exactly two blocks
  const std::vector<float> first = Run(*kv, 0, a, 0);
  kv->RemoveSeq(0);
  for (SeqId s = 1; s <= 2; ++s) {
    // The second block is shared for 15 positions and copied on the write
    // of the 16th, so the cached original survives for the next request.
    ASSERT_EQ(kv->AttachPrefix(s, a), 31);
    const std::vector<float> warm = Run(*kv, s, {a.back()}, 31);
    EXPECT_LE(MaxAbsDiff(warm, Cold(a, 31)), kSameShapeTol);
    EXPECT_LE(MaxAbsDiff(warm, first), kBatchingTol);
    kv->RemoveSeq(s);
  }
  EXPECT_TRUE(kv->CheckInvariants().ok()) << kv->CheckInvariants();
}

TEST_F(KvPagedModel, DivergingInsideABlockCopiesOnWrite) {
  auto kv = Paged(16);
  const std::vector<TokenId> a = RandomTokens(10, 40);
  Run(*kv, 0, a, 0);  // stays running
  const std::vector<float> a_kv = Snapshot(*kv, 0, 40);
  const std::vector<TokenId> b = Cat(Slice(a, 0, 24), RandomTokens(11, 11));

  ASSERT_EQ(kv->AttachPrefix(1, b), 24);  // block 0 whole, block 1's first 8 positions
  EXPECT_EQ(kv->BlockTable(1), (std::vector<int32_t>{kv->BlockTable(0)[0], kv->BlockTable(0)[1]}));
  const std::vector<float> warm = Run(*kv, 1, Slice(b, 24, b.size()), 24);
  EXPECT_LE(MaxAbsDiff(warm, Cold(b, 24)), kSameShapeTol);
  EXPECT_LE(MaxAbsDiff(warm, Cold(b, 0)), kBatchingTol);
  EXPECT_EQ(kv->BlockTable(1)[0], kv->BlockTable(0)[0]);
  EXPECT_NE(kv->BlockTable(1)[1], kv->BlockTable(0)[1]);

  // The original sequence's K/V is untouched, and it continues as if alone.
  EXPECT_EQ(Snapshot(*kv, 0, 40), a_kv);
  const TokenId next = 77;
  const std::vector<float> cont = Run(*kv, 0, {next}, 40);
  EXPECT_LE(MaxAbsDiff(cont, Cold(Cat(a, {next}), 40)), kSameShapeTol);
  EXPECT_TRUE(kv->CheckInvariants().ok()) << kv->CheckInvariants();
}

TEST_F(KvPagedModel, ForkedContinuationsMatchColdRuns) {
  auto kv = Paged(16);
  auto cold = MakeKvCache(*model_, 512);
  const std::vector<TokenId> p = RandomTokens(12, 21);
  Run(*kv, 0, p, 0);
  ASSERT_TRUE(kv->Fork(0, 1).ok());
  EXPECT_EQ(kv->BlockTable(1), kv->BlockTable(0));
  Run(*cold, 0, p, 0);
  Run(*cold, 1, p, 0);
  // Two continuations in one batch, two steps; the shared partial block is
  // copied by the first writer, the full one stays shared.
  TokenId x = 100, y = 200;
  for (int32_t pos = 21; pos < 23; ++pos) {
    Batch b;
    b.Add(x, pos, 0, true);
    b.Add(y, pos, 1, true);
    ForwardOutput warm, ref;
    ASSERT_TRUE(ctx_.Decode(b, *kv, &warm).ok());
    ASSERT_TRUE(ctx_.Decode(b, *cold, &ref).ok());
    ASSERT_TRUE(kv->SetTokens(0, pos, std::vector<TokenId>{x}).ok());
    ASSERT_TRUE(kv->SetTokens(1, pos, std::vector<TokenId>{y}).ok());
    EXPECT_LE(MaxAbsDiff(warm.Row(0), ref.Row(0)), kSameShapeTol);
    EXPECT_LE(MaxAbsDiff(warm.Row(1), ref.Row(1)), kSameShapeTol);
    EXPECT_GT(MaxAbsDiff(warm.Row(0), warm.Row(1)), 0.0f);
    x = testing::ArgMaxOf(warm.Row(0));
    y = testing::ArgMaxOf(warm.Row(1));
  }
  EXPECT_EQ(kv->BlockTable(1)[0], kv->BlockTable(0)[0]);
  EXPECT_NE(kv->BlockTable(1)[1], kv->BlockTable(0)[1]);
  EXPECT_TRUE(kv->CheckInvariants().ok()) << kv->CheckInvariants();
}

TEST_F(KvPagedModel, FullPoolFailsDecodeWithResourceExhausted) {
  auto kv = Paged(16, /*n_blocks=*/3);
  Batch b;
  b.AddSequence(RandomTokens(13, 49), 0, 0);  // 4 blocks
  ForwardOutput out;
  EXPECT_EQ(ctx_.Decode(b, *kv, &out).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(kv->stats().blocks_free, 3);
}

// ------------------------------------------------------------ stress

// What a toy "model" writes at position p: a function of tokens[0..p], so a
// row read back proves it belongs to exactly this token history.
float PrefixCode(const std::vector<TokenId>& t, size_t p) {
  uint32_t h = 0;
  for (size_t i = 0; i <= p; ++i) h = (h * 31 + static_cast<uint32_t>(t[i]) + 1) & 0xFFFFF;
  return static_cast<float>(h);
}

// 4000 random operations on a 20-block pool; every step checks the cache
// against the reference.
void RunStress(uint32_t seed) {
  constexpr int32_t kBlocks = 20, kCtx = 48, kIds = 10;
  PagedKvCache kv = Toy(kBlocks, kCtx);
  std::map<SeqId, std::vector<TokenId>> ref;  // the reference: each sequence's tokens
  std::mt19937 rng(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // Prompts share prefixes: one of three stems, then a short random tail.
  auto prompt = [&] {
    std::vector<TokenId> t = Range(50 * uni(0, 2), uni(0, 14));
    for (int n = uni(1, 6); n > 0; --n) t.push_back(uni(0, 3));
    return t;
  };
  // Writes K/V of tokens[from..) at positions from.., as a Decode would.
  // The caller records tokens before Prepare (if the sequence exists),
  // between Prepare and the writes, or after the writes.
  auto write = [&](SeqId id, const std::vector<TokenId>& t, size_t from) -> absl::Status {
    const int when = uni(0, 2);
    auto record = [&] { return kv.SetTokens(id, static_cast<int32_t>(from), Slice(t, from, t.size())); };
    if (when == 0 && ref.count(id)) {
      if (auto s = record(); !s.ok()) return s;
    }
    if (auto s = kv.Prepare(id, static_cast<int32_t>(t.size())); !s.ok()) return s;
    if (when == 1) {
      if (auto s = record(); !s.ok()) return s;
    }
    for (size_t p = from; p < t.size(); ++p) {
      float* k = kv.KRow(id, 0, static_cast<int32_t>(p));
      k[0] = PrefixCode(t, p);
      k[1] = static_cast<float>(p);
      float* v = kv.VRow(id, 0, static_cast<int32_t>(p));
      v[0] = static_cast<float>(t[p]);
      v[1] = -static_cast<float>(p);
    }
    return record();  // again when already done: harmless, same tokens
  };
  auto free_id = [&]() -> SeqId {
    for (int tries = 0; tries < 20; ++tries) {
      const SeqId id = uni(0, kIds - 1);
      if (!ref.count(id)) return id;
    }
    return -1;
  };
  auto live_id = [&]() -> SeqId {
    if (ref.empty()) return -1;
    auto it = ref.begin();
    std::advance(it, uni(0, static_cast<int>(ref.size()) - 1));
    return it->first;
  };

  int64_t exhausted = 0, lost = 0;
  for (int op = 0; op < 4000; ++op) {
    const int kind = uni(0, 9);
    if (kind <= 2) {  // new sequence: attach a cached prefix, compute the rest
      const SeqId id = free_id();
      if (id < 0) continue;
      const std::vector<TokenId> t = prompt();
      const int32_t reused = kv.AttachPrefix(id, t);
      ASSERT_LT(reused, static_cast<int32_t>(t.size()));
      ASSERT_EQ(kv.SeqLength(id), reused);
      if (reused > 0) ref[id] = Slice(t, 0, reused);
      absl::Status s = write(id, t, reused);
      if (s.ok()) {
        ref[id] = t;
      } else {
        ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
        ++exhausted;
      }
    } else if (kind <= 4) {  // extend
      const SeqId id = live_id();
      if (id < 0) continue;
      std::vector<TokenId> t = ref[id];
      const size_t from = t.size();
      for (int n = uni(1, 6); n > 0; --n) t.push_back(uni(0, 3));
      if (t.size() > static_cast<size_t>(kCtx)) continue;
      absl::Status s = write(id, t, from);
      if (s.ok()) {
        ref[id] = t;
      } else {
        ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
        ++exhausted;
      }
    } else if (kind == 5) {  // fork
      const SeqId src = live_id(), dst = free_id();
      if (src < 0 || dst < 0) continue;
      ASSERT_TRUE(kv.Fork(src, dst).ok());
      ref[dst] = ref[src];
    } else if (kind <= 7) {  // remove
      const SeqId id = live_id();
      if (id < 0) continue;
      kv.RemoveSeq(id);
      ref.erase(id);
    } else if (kind == 8) {  // truncate, then append something else
      const SeqId id = live_id();
      if (id < 0) continue;
      std::vector<TokenId> t = ref[id];
      t.resize(static_cast<size_t>(uni(0, static_cast<int>(t.size()))));
      ASSERT_TRUE(kv.Prepare(id, static_cast<int32_t>(t.size())).ok());
      ref[id] = t;
      const size_t from = t.size();
      for (int n = uni(1, 4); n > 0; --n) t.push_back(uni(4, 5));
      if (write(id, t, from).ok()) ref[id] = t;
    } else {  // rewrite the last position in place, without truncating
      const SeqId id = live_id();
      if (id < 0 || ref[id].empty()) continue;
      std::vector<TokenId> t = ref[id];
      t.back() = uni(6, 7);
      const size_t p = t.size() - 1;
      float* k = kv.KRow(id, 0, static_cast<int32_t>(p));
      k[0] = PrefixCode(t, p);
      k[1] = static_cast<float>(p);
      float* v = kv.VRow(id, 0, static_cast<int32_t>(p));
      v[0] = static_cast<float>(t[p]);
      v[1] = -static_cast<float>(p);
      if (kv.Prepare(id, static_cast<int32_t>(t.size())).code() == absl::StatusCode::kDataLoss) {
        ++lost;  // pool full: the write went nowhere, shared rows untouched
        kv.RemoveSeq(id);
        ref.erase(id);
        continue;
      }
      ASSERT_TRUE(kv.SetTokens(id, static_cast<int32_t>(p), Slice(t, p, t.size())).ok());
      ref[id] = t;
    }

    // Invariants: the cache's own check, then refcounts recomputed here from
    // the block tables, then every row of every sequence.
    const absl::Status inv = kv.CheckInvariants();
    ASSERT_TRUE(inv.ok()) << "op " << op << ": " << inv;
    const KvStats st = kv.stats();
    ASSERT_EQ(st.blocks_used + st.blocks_cached + st.blocks_free, st.blocks_total);
    std::vector<int32_t> refs(kBlocks, 0);
    for (const auto& [id, t] : ref) {
      ASSERT_EQ(kv.SeqLength(id), static_cast<int32_t>(t.size())) << "op " << op;
      for (int32_t b : kv.BlockTable(id)) ++refs[b];
    }
    int32_t used = 0;
    for (int32_t b = 0; b < kBlocks; ++b) {
      ASSERT_EQ(kv.RefCount(b), refs[b]) << "op " << op << " block " << b;
      used += refs[b] > 0;
    }
    ASSERT_EQ(st.blocks_used, used);
    for (const auto& [id, t] : ref) {
      for (size_t p = 0; p < t.size(); ++p) {
        const auto pos = static_cast<int32_t>(p);
        const KvSpan sp = kv.Span(id, 0, pos / kBs * kBs, kBs);
        const float* k = sp.k + (pos % kBs) * sp.k_stride;
        const float* v = sp.v + (pos % kBs) * sp.v_stride;
        ASSERT_EQ(k[0], PrefixCode(t, p)) << "op " << op << " seq " << id << " pos " << p;
        ASSERT_EQ(k[1], static_cast<float>(p));
        ASSERT_EQ(v[0], static_cast<float>(t[p]));
        ASSERT_EQ(v[1], -static_cast<float>(p));
      }
    }
  }
  const KvStats st = kv.stats();
  EXPECT_GT(st.prefix_hit_tokens, 0);
  EXPECT_GT(exhausted, 0);  // the pool did run full
  std::printf("hits %lld / %lld tokens, exhausted %lld, lost writes %lld\n",
              static_cast<long long>(st.prefix_hit_tokens),
              static_cast<long long>(st.prefix_query_tokens), static_cast<long long>(exhausted),
              static_cast<long long>(lost));
  for (const auto& [id, t] : ref) kv.RemoveSeq(id);
  EXPECT_EQ(kv.stats().blocks_used, 0);
  EXPECT_TRUE(kv.CheckInvariants().ok());
}

TEST(KvPagedStress, RandomOpsKeepRefcountsAndContent) {
  for (uint32_t seed : {1234u, 1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    ASSERT_NO_FATAL_FAILURE(RunStress(seed));
  }
}

}  // namespace
}  // namespace llmesh::engine
