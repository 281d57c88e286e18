// Sliding-window KV: a windowed PagedKvCache pool holds a sequence's last
// window of positions whatever its length, keeps what it holds readable,
// refuses rewinds past it, and still serves prefix reuse; ModelKvCache runs a
// sliding-window family (../shared/arch's gemma2, window 8) far past its
// window with the logits of the scalar reference and a bounded window pool.
#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "llmesh/engine/decoder_reference.h"
#include "llmesh/engine/forward.h"
#include "llmesh/engine/kv_model.h"
#include "llmesh/engine/kv_paged.h"
#include "llmesh/engine/sampling_basic.h"
#include "model_test_util.h"

namespace llmesh::engine {
namespace {

constexpr int32_t kBs = 4, kWindow = 6;

// 1 layer, 2-float rows; row of position p holds (p, -p).
PagedKvCache WindowedToy(int32_t n_blocks) {
  return PagedKvCache(/*n_layer=*/1, /*n_embd_k=*/2, /*n_embd_v=*/2, /*n_ctx=*/1024, kBs, n_blocks, kWindow);
}

void Append(PagedKvCache& kv, SeqId seq, int32_t pos, bool known_tokens) {
  const absl::Status st = kv.Prepare(seq, pos + 1);
  ASSERT_TRUE(st.ok()) << pos << ": " << st;
  if (known_tokens) {
    const TokenId t = pos % 7;
    ASSERT_TRUE(kv.SetTokens(seq, pos, std::span<const TokenId>(&t, 1)).ok());
  }
  float* k = kv.KRow(seq, 0, pos);
  k[0] = static_cast<float>(pos);
  k[1] = -static_cast<float>(pos);
  kv.VRow(seq, 0, pos)[0] = static_cast<float>(pos);
  kv.Trim(seq);  // as ForwardContext::Decode does once a step's rows are written
}

int32_t Held(const PagedKvCache& kv, SeqId seq) {
  const auto t = kv.BlockTable(seq);
  return static_cast<int32_t>(std::count_if(t.begin(), t.end(), [](int32_t b) { return b >= 0; }));
}

TEST(KvWindow, HoldsOnlyTheWindowAndReadsBackWhatItHolds) {
  for (bool known : {false, true}) {
    PagedKvCache kv = WindowedToy(64);
    for (int32_t pos = 0; pos < 200; ++pos) {
      Append(kv, 0, pos, known);
      ASSERT_TRUE(kv.CheckInvariants().ok()) << kv.CheckInvariants();
      // The next token (pos + 1) sees [pos + 2 - window, pos + 1]: at most
      // ceil((window - 1) / bs) + 1 blocks of history plus the current one.
      EXPECT_LE(Held(kv, 0), (kWindow - 1 + kBs - 1) / kBs + 2) << pos;
      const int32_t first = kv.FirstKept(0);
      // Everything position pos + 1 will attend to (but itself) is held.
      EXPECT_LE(first, std::max(0, pos + 2 - kWindow));
      for (int32_t p = std::max(0, pos + 2 - kWindow); p <= pos; ++p) {
        const KvSpan sp = kv.Span(0, 0, p - p % kBs, kBs);
        ASSERT_GT(sp.n, 0) << p;
        EXPECT_EQ(sp.k[(p % kBs) * sp.k_stride], static_cast<float>(p));
      }
    }
    EXPECT_EQ(kv.stats().blocks_used, Held(kv, 0));
  }
}

TEST(KvWindow, RefusesToRewindPastTheWindowAndChangesNothing) {
  PagedKvCache kv = WindowedToy(64);
  for (int32_t pos = 0; pos < 40; ++pos) Append(kv, 0, pos, false);
  const auto table = kv.BlockTable(0);
  auto st = kv.Prepare(0, 20);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(kv.SeqLength(0), 40);
  EXPECT_EQ(kv.BlockTable(0), table);
  // Within the window it may rewind and write again.
  ASSERT_TRUE(kv.Prepare(0, 38).ok());
  Append(kv, 0, 38, false);
  EXPECT_TRUE(kv.CheckInvariants().ok());
}

TEST(KvWindow, ReleasedBlocksStayReusablePrefixes) {
  PagedKvCache kv = WindowedToy(64);
  for (int32_t pos = 0; pos < 40; ++pos) Append(kv, 0, pos, true);
  std::vector<TokenId> prompt(41);
  for (int32_t p = 0; p < 41; ++p) prompt[p] = p % 7;
  kv.RemoveSeq(0);
  // Every full block was indexed before it was released.
  EXPECT_EQ(kv.AttachPrefix(1, prompt), 40);
  ASSERT_TRUE(kv.CheckInvariants().ok()) << kv.CheckInvariants();
  Append(kv, 1, 40, true);  // the first step releases what the window no longer needs
  EXPECT_LE(Held(kv, 1), (kWindow - 1 + kBs - 1) / kBs + 2);
  EXPECT_TRUE(kv.CheckInvariants().ok()) << kv.CheckInvariants();
}

// A pool barely larger than two windows: released blocks are cached parents
// of the chains the sequences still extend; the pool must evict them (and
// their subtrees) rather than run out.
TEST(KvWindow, SmallPoolEvictsCachedChainsInsteadOfFilling) {
  PagedKvCache kv = WindowedToy(2 * ((kWindow - 1 + kBs - 1) / kBs + 2) + 1);
  for (int32_t pos = 0; pos < 300; ++pos) {
    Append(kv, 0, pos, true);
    if (pos % 2 == 0) Append(kv, 1, pos / 2, true);  // a second, slower sequence
    ASSERT_TRUE(kv.CheckInvariants().ok()) << pos << ": " << kv.CheckInvariants();
  }
}

// ---------------------------------------------------------------- gemma2

std::string Gemma2Path() { return std::string(LLMESH_ARCH_MODELS_DIR) + "/gemma2-f16.gguf"; }

TEST(KvWindowModel, LongSequenceMatchesReferenceWithABoundedWindowPool) {
  auto m = testing::LoadOrDie(Gemma2Path());
  ASSERT_NE(m, nullptr);
  ASSERT_GT(m->params().n_swa, 0);
  auto kv = MakeModelKvCache(*m, 256, 8 << 20, 16, /*max_seqs=*/2, /*max_batch_tokens=*/32);
  ASSERT_TRUE(kv.ok()) << kv.status();
  ASSERT_TRUE((*kv)->windowed());
  DecoderReference ref(*m, 256);
  ThreadPool pool(2);
  ForwardContext ctx(*m, pool);
  // A 20-token prompt in one batch, then greedy tokens one at a time to 120.
  std::vector<int32_t> tokens;
  for (int i = 0; i < 20; ++i) tokens.push_back(100 + 37 * i % 900);
  Batch b;
  b.AddSequence(tokens, 0, 0);
  ForwardOutput out;
  ASSERT_TRUE(ctx.Decode(b, **kv, &out).ok());
  std::vector<float> want;
  for (int32_t p = 0; p < 20; ++p) want = ref.Forward(tokens[p], p);
  int32_t max_window_used = 0;
  for (int32_t pos = 20; pos < 120; ++pos) {
    float diff = 0;
    for (size_t i = 0; i < want.size(); ++i) diff = std::max(diff, std::fabs(want[i] - out.Row(0)[i]));
    ASSERT_LT(diff, 5e-3f) << "pos " << pos;
    tokens.push_back(ArgMax(want));
    b.Clear();
    b.Add(tokens.back(), pos, 0, true);
    ASSERT_TRUE(ctx.Decode(b, **kv, &out).ok());
    want = ref.Forward(tokens.back(), pos);
    max_window_used = std::max(max_window_used, (*kv)->stats().window_blocks_used);
    ASSERT_TRUE((*kv)->CheckInvariants().ok());
  }
  // Window 8, blocks of 16: at most two blocks, whatever the length; the
  // full-context layers hold all 120 positions.
  EXPECT_LE(max_window_used, 2);
  EXPECT_GE((*kv)->stats().blocks_used, 120 / 16);
  // A rewrite that needs released K/V is refused with a reason.
  b.Clear();
  b.Add(tokens[10], 10, 0, true);
  EXPECT_EQ(ctx.Decode(b, **kv, &out).code(), absl::StatusCode::kInvalidArgument);
}

TEST(KvWindowModel, PrefixReuseAcrossThePoolsGivesTheColdLogits) {
  auto m = testing::LoadOrDie(Gemma2Path());
  ASSERT_NE(m, nullptr);
  auto kv = MakeModelKvCache(*m, 256, 8 << 20, 16, 4, 64);
  ASSERT_TRUE(kv.ok());
  ThreadPool pool(2);
  ForwardContext ctx(*m, pool);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 70; ++i) prompt.push_back(50 + 13 * i % 700);
  auto run = [&](SeqId seq) {
    const int32_t reused = (*kv)->AttachPrefix(seq, prompt);
    EXPECT_TRUE((*kv)->SetTokens(seq, 0, prompt).ok());
    Batch b;
    b.AddSequence(std::vector<int32_t>(prompt.begin() + reused, prompt.end()), reused, seq);
    ForwardOutput out;
    EXPECT_TRUE(ctx.Decode(b, **kv, &out).ok());
    return std::make_pair(reused, std::vector<float>(out.Row(0).begin(), out.Row(0).end()));
  };
  const auto cold = run(0);
  EXPECT_EQ(cold.first, 0);
  (*kv)->RemoveSeq(0);
  const auto warm = run(1);
  EXPECT_EQ(warm.first, 64);  // four full blocks, from both pools
  EXPECT_LT(testing::MaxAbsDiff(cold.second, warm.second), 1e-3f);
  EXPECT_TRUE((*kv)->CheckInvariants().ok());
}

}  // namespace
}  // namespace llmesh::engine
