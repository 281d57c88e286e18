// BertModel loading (hyperparameters, tensor checks, malformed files), the
// bag-of-words synth recipe's known answer, and a bert model inside Engine:
// Embed dispatches to the encoder, generation is refused.
#include <algorithm>
#include <filesystem>
#include <future>

#include "absl/strings/match.h"
#include "bert_test_util.h"
#include "gtest/gtest.h"
#include "llmesh/engine/bert_forward.h"
#include "llmesh/engine/bert_model.h"
#include "llmesh/engine/engine.h"
#include "llmesh/gguf/gguf_writer.h"

namespace llmesh::engine {
namespace {

using testing::SynthBert;
using testing::Tokenize;

// The file at `path` re-encoded in memory with `edit` applied to its
// metadata and tensors dropped or renamed by `rename` ("" drops one).
absl::StatusOr<std::unique_ptr<BertModel>> LoadEdited(
    const std::string& path, const std::function<void(gguf::GgufWriter&)>& edit,
    const std::function<std::string(const std::string&)>& rename = nullptr) {
  auto src = gguf::GgufFile::Open(path);
  if (!src.ok()) return src.status();
  gguf::GgufWriter w;
  if (auto s = w.CopyMetadata(**src); !s.ok()) return s;
  edit(w);
  for (const gguf::TensorInfo& t : (*src)->tensors()) {
    std::string name(t.name);
    if (rename) name = rename(name);
    if (name.empty()) continue;
    std::vector<int64_t> dims(t.ne, t.ne + t.n_dims);
    if (auto s = w.AddTensorView(name, t.type, dims, {t.data, t.nbytes}); !s.ok()) return s;
  }
  auto file = gguf::GgufFile::FromBuffer(w.WriteToBuffer());
  if (!file.ok()) return file.status();
  return BertModel::FromGguf(std::move(*file));
}

void ExpectLoadError(const absl::StatusOr<std::unique_ptr<BertModel>>& m, const std::string& needle) {
  ASSERT_FALSE(m.ok()) << needle;
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(m.status().message(), needle)) << m.status().message();
}

TEST(BertModel, LoadsTheSynthesizedShape) {
  const std::string path = SynthBert(gguf::GgmlType::kQ8_0, "load", BertSynthRecipe::kRandom, Pooling::kCls);
  auto m = BertModel::Load(path);
  ASSERT_TRUE(m.ok()) << m.status();
  const BertParams& hp = (*m)->params();
  EXPECT_EQ(hp.n_embd, 256);
  EXPECT_EQ(hp.n_layer, 2);
  EXPECT_EQ(hp.n_head, 4);
  EXPECT_EQ(hp.n_ff, 512);
  EXPECT_EQ(hp.n_ctx_train, 64);
  EXPECT_EQ(hp.n_vocab, 30522);  // bge-small's WordPiece vocabulary
  EXPECT_EQ(hp.n_token_types, 2);
  EXPECT_FLOAT_EQ(hp.norm_eps, 1e-12f);
  EXPECT_EQ(hp.pooling, Pooling::kCls);
  EXPECT_TRUE(IsBertFile((*m)->file()));
  // A bert file is not a decoder: the llama loader names what it found.
  auto as_llama = Model::Load(path);
  ASSERT_FALSE(as_llama.ok());
  EXPECT_TRUE(absl::StrContains(as_llama.status().message(), "bert")) << as_llama.status();
}

TEST(BertModel, MalformedFilesAreRejectedWithTheReason) {
  const std::string path = SynthBert(gguf::GgmlType::kQ8_0, "malformed");
  auto set_u32 = [](const std::string& key, uint32_t v) {
    return [key, v](gguf::GgufWriter& w) {
      w.RemoveKey(key);
      w.SetU32(key, v);
    };
  };
  auto drop = [](const std::string& victim) {
    return [victim](const std::string& n) { return n == victim ? std::string() : n; };
  };
  auto none = [](gguf::GgufWriter&) {};
  ASSERT_TRUE(LoadEdited(path, none).ok());  // the unedited copy loads
  ExpectLoadError(LoadEdited(path, set_u32("bert.pooling_type", 4)), "pooling_type");
  ExpectLoadError(LoadEdited(path, set_u32("bert.block_count", 0)), "block_count");
  ExpectLoadError(LoadEdited(path, set_u32("bert.block_count", 100000)), "block_count");
  ExpectLoadError(LoadEdited(path, set_u32("bert.block_count", 1)), "beyond");
  ExpectLoadError(LoadEdited(path, set_u32("bert.attention.head_count", 3)), "multiple");
  ExpectLoadError(LoadEdited(path, set_u32("bert.context_length", 65)), "position_embd");
  ExpectLoadError(LoadEdited(path, set_u32("bert.embedding_length", 128)), "shape");
  ExpectLoadError(LoadEdited(path, [](gguf::GgufWriter& w) { w.RemoveKey("bert.attention.layer_norm_epsilon"); }),
                  "layer_norm_epsilon");
  ExpectLoadError(LoadEdited(path, [](gguf::GgufWriter& w) {
                    w.RemoveKey("bert.attention.causal");
                    w.SetBool("bert.attention.causal", true);
                  }),
                  "causal");
  ExpectLoadError(LoadEdited(path, none, drop("blk.1.ffn_up.weight")), "blk.1.ffn_up.weight");
  ExpectLoadError(LoadEdited(path, none, drop("position_embd.weight")), "position_embd.weight");
  ExpectLoadError(LoadEdited(path, none, drop("token_embd_norm.bias")), "token_embd_norm.bias");
  // Biases and token types are optional, as in llama.cpp.
  auto no_bias = LoadEdited(path, none, drop("blk.0.attn_q.bias"));
  ASSERT_TRUE(no_bias.ok()) << no_bias.status();
  EXPECT_EQ((*no_bias)->layers()[0].bq, nullptr);
  auto no_types = LoadEdited(path, none, drop("token_types.weight"));
  ASSERT_TRUE(no_types.ok()) << no_types.status();
  EXPECT_EQ((*no_types)->params().n_token_types, 0);
}

// The bag-of-words recipe has a known answer: the normalised mean of the
// text's word vectors (token_embd rows normalised as the first LayerNorm
// does; [CLS], [SEP], single characters and stop words are zero rows),
// whatever the word order.
TEST(BertModel, BagOfWordsRecipeIsTheMeanOfWordVectors) {
  auto m = BertModel::Load(SynthBert(gguf::GgmlType::kF32, "bow", BertSynthRecipe::kBagOfWords));
  ASSERT_TRUE(m.ok()) << m.status();
  ThreadPool pool(2);
  BertForward fwd(**m, pool);
  auto seqs = Tokenize((*m)->file(), {"the red fox sleeps", "sleeps fox red the", "a blue whale sings"});
  auto e = fwd.Embed(seqs, Pooling::kDefault);
  ASSERT_TRUE(e.ok()) << e.status();
  const int64_t n = (*m)->params().n_embd;
  std::vector<double> want(n, 0.0);
  for (TokenId t : seqs[0]) {
    std::vector<float> row(n);
    DequantizeWeightRow((*m)->tok_embd(), t, row.data());
    double mean = 0, var = 0;
    for (float v : row) mean += v / n;
    for (float v : row) var += (v - mean) * (v - mean) / n;
    if (var == 0) continue;  // a zero row: [CLS], [SEP], "the"
    for (int64_t i = 0; i < n; ++i) want[i] += (row[i] - mean) / std::sqrt(var);
  }
  double ss = 0;
  for (double v : want) ss += v * v;
  for (double& v : want) v /= std::sqrt(ss);
  EXPECT_LT(testing::MaxAbsDiff((*e)[0], want), 1e-5);
  // Order does not matter; shared words do.
  std::vector<double> reordered((*e)[1].begin(), (*e)[1].end());
  EXPECT_LT(testing::MaxAbsDiff((*e)[0], reordered), 1e-5);
  std::vector<double> other((*e)[2].begin(), (*e)[2].end());
  EXPECT_LT(testing::Cosine((*e)[0], other), 0.3);
  // Words in nearly every text carry nothing; content words do.
  auto ids = Tokenize((*m)->file(), {"the fox ."})[0];  // [CLS] the fox . [SEP]
  ASSERT_EQ(ids.size(), 5u);
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<float> row(n);
    DequantizeWeightRow((*m)->tok_embd(), ids[i], row.data());
    const bool zero = std::all_of(row.begin(), row.end(), [](float v) { return v == 0.0f; });
    EXPECT_EQ(zero, i != 2) << "token " << i << " (id " << ids[i] << ")";
  }
}

// Engine::Embed/Load on a model directory holding a bert file.
TEST(BertModel, EngineServesEmbedOnlyForBert) {
  const std::string path = SynthBert(gguf::GgmlType::kQ8_0, "engine");
  const std::filesystem::path p(path);
  EngineConfig config;
  config.model_dir = p.parent_path().string();
  config.n_threads = 2;
  Engine engine(config);
  auto info = engine.LoadModel(p.stem().string());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->architecture, "bert");
  EXPECT_EQ(info->n_embd, 256);
  EXPECT_EQ(info->n_ctx, 64);

  auto m = BertModel::Load(path);
  ASSERT_TRUE(m.ok());
  auto seqs = Tokenize((*m)->file(), {"first text to embed", "and a second, longer text to embed"});
  ThreadPool pool(1);
  BertForward fwd(**m, pool);
  auto embed = [&](std::vector<std::vector<TokenId>> in, Pooling pooling) {
    std::promise<absl::StatusOr<EmbedResult>> done;
    engine.Embed(p.stem().string(), std::move(in), pooling,
                 [&](absl::StatusOr<EmbedResult> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  };
  for (Pooling pooling : {Pooling::kDefault, Pooling::kCls, Pooling::kLast}) {
    auto got = embed(seqs, pooling);
    ASSERT_TRUE(got.ok()) << got.status();
    auto want = fwd.Embed(seqs, pooling);
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(got->embeddings.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      std::vector<double> w((*want)[i].begin(), (*want)[i].end());
      EXPECT_LT(testing::MaxAbsDiff(got->embeddings[i], w), 1e-6) << PoolingName(pooling);
      EXPECT_EQ(got->n_tokens[i], static_cast<int32_t>(seqs[i].size()));
    }
  }
  auto too_long = embed({std::vector<TokenId>(65, 1000)}, Pooling::kMean);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument) << too_long.status();
  auto bad_token = embed({{101, 40000, 102}}, Pooling::kMean);
  EXPECT_EQ(bad_token.status().code(), absl::StatusCode::kInvalidArgument) << bad_token.status();
  EXPECT_TRUE(embed(seqs, Pooling::kMean).ok());  // and the next request works

  auto session = engine.OpenSession(p.stem().string(), absl::Seconds(10));
  EXPECT_EQ(session.status().code(), absl::StatusCode::kFailedPrecondition) << session.status();
  EXPECT_TRUE(absl::StrContains(session.status().message(), "Embed only")) << session.status();
  auto lm = engine.Get(p.stem().string());
  ASSERT_TRUE(lm.ok());
  EXPECT_EQ((*lm)->CheckGenerative().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(engine.UnloadModel(p.stem().string()).ok());
}

}  // namespace
}  // namespace llmesh::engine
