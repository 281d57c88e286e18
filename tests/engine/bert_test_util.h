// Helpers shared by the BERT tests: synthesized encoders with the real
// WordPiece vocabulary (bge-small's, from ../shared/tokenizer-vectors), and
// a reference BERT written independently of engine-svc's BertForward.
#pragma once

#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "llmesh/engine/bert_synth.h"
#include "llmesh/engine/quants.h"
#include "llmesh/gguf/gguf_file.h"
#include "llmesh/tokenizer/tokenizer.h"
#include "model_test_util.h"

namespace llmesh::engine::testing {

inline std::string BgeVocabPath() {
  return std::string(LLMESH_SHARED_DIR) + "/tokenizer-vectors/ggml-vocab-bert-bge.gguf";
}

// The `tiny` bert shape (256 wide, 2 layers, 4 heads, 64 positions) written
// to the test temp dir with the bge WordPiece vocabulary.
inline std::string SynthBert(gguf::GgmlType type, const std::string& tag,
                             BertSynthRecipe recipe = BertSynthRecipe::kRandom,
                             Pooling pooling = Pooling::kMean, uint64_t seed = 11) {
  auto vocab = gguf::GgufFile::Open(BgeVocabPath());
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  if (!vocab.ok()) return "";
  BertSynthOptions o;
  auto shape = BertSynthShapeByName("tiny");
  EXPECT_TRUE(shape.ok());
  o.shape = *shape;
  o.shape.pooling = pooling;
  o.recipe = recipe;
  o.type = type;
  o.pure = true;
  o.vocab = vocab->get();
  o.seed = seed;
  o.n_threads = 2;
  const std::string path = TempPath("bert_" + tag + ".gguf");
  absl::Status s = SynthesizeBertModel(o, path);
  EXPECT_TRUE(s.ok()) << s;
  return path;
}

// Texts tokenized as the engine service tokenizes them: [CLS] ... [SEP].
inline std::vector<std::vector<TokenId>> Tokenize(const gguf::GgufFile& file,
                                                  const std::vector<std::string>& texts) {
  auto tok = tokenizer::Tokenizer::FromGguf(file);
  EXPECT_TRUE(tok.ok()) << tok.status();
  std::vector<std::vector<TokenId>> out;
  if (!tok.ok()) return out;
  for (const std::string& t : texts) {
    auto ids = (*tok)->Encode(t, /*add_special=*/true, /*parse_special=*/false);
    EXPECT_TRUE(ids.ok()) << ids.status();
    out.push_back(ids.ok() ? *ids : std::vector<TokenId>{});
  }
  return out;
}

// BERT as llama.cpp's LLM_ARCH_BERT graph defines it, read straight from the
// GGUF file: every weight dequantized to double, plain loops, double sums.
// Slow and obviously correct; nothing shared with BertForward but the
// scalar row dequantizers.
class BertReference {
 public:
  explicit BertReference(const gguf::GgufFile& f) : f_(f) {
    n_embd_ = Key("bert.embedding_length");
    n_head_ = Key("bert.attention.head_count");
    n_layer_ = Key("bert.block_count");
    eps_ = *f.GetF32("bert.attention.layer_norm_epsilon");
  }

  // Final hidden states, (n_tokens)(n_embd).
  std::vector<std::vector<double>> Hidden(const std::vector<TokenId>& tokens) const {
    const size_t n = tokens.size();
    const std::vector<double> type0 = Row("token_types.weight", 0);
    std::vector<std::vector<double>> h(n);
    for (size_t i = 0; i < n; ++i) {
      h[i] = Row("token_embd.weight", tokens[i]);
      const std::vector<double> pos = Row("position_embd.weight", static_cast<int64_t>(i));
      for (int64_t d = 0; d < n_embd_; ++d) h[i][d] += pos[d] + type0[d];
      h[i] = LayerNorm(h[i], "token_embd_norm");
    }
    const int64_t hd = n_embd_ / n_head_;
    for (int64_t l = 0; l < n_layer_; ++l) {
      auto nm = [l](const std::string& s) { return absl::StrCat("blk.", l, ".", s); };
      std::vector<std::vector<double>> q(n), k(n), v(n), att(n, std::vector<double>(n_embd_, 0.0));
      for (size_t i = 0; i < n; ++i) {
        q[i] = Linear(nm("attn_q"), h[i]);
        k[i] = Linear(nm("attn_k"), h[i]);
        v[i] = Linear(nm("attn_v"), h[i]);
      }
      for (int64_t head = 0; head < n_head_; ++head) {
        for (size_t i = 0; i < n; ++i) {
          std::vector<double> s(n);
          double max = -1e300;
          for (size_t j = 0; j < n; ++j) {  // every token, both directions
            double dot = 0.0;
            for (int64_t d = 0; d < hd; ++d) dot += q[i][head * hd + d] * k[j][head * hd + d];
            s[j] = dot / std::sqrt(static_cast<double>(hd));
            max = std::max(max, s[j]);
          }
          double sum = 0.0;
          for (double& x : s) sum += (x = std::exp(x - max));
          for (size_t j = 0; j < n; ++j) {
            for (int64_t d = 0; d < hd; ++d) att[i][head * hd + d] += s[j] / sum * v[j][head * hd + d];
          }
        }
      }
      for (size_t i = 0; i < n; ++i) {
        std::vector<double> o = Linear(nm("attn_output"), att[i]);
        for (int64_t d = 0; d < n_embd_; ++d) o[d] += h[i][d];
        h[i] = LayerNorm(o, nm("attn_output_norm"));
        std::vector<double> up = Linear(nm("ffn_up"), h[i]);
        for (double& x : up) x = 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
        std::vector<double> down = Linear(nm("ffn_down"), up);
        for (int64_t d = 0; d < n_embd_; ++d) down[d] += h[i][d];
        h[i] = LayerNorm(down, nm("layer_output_norm"));
      }
    }
    return h;
  }

  // Pooled (mean or CLS = first token) and L2-normalised.
  std::vector<double> Embed(const std::vector<TokenId>& tokens, bool cls) const {
    auto h = Hidden(tokens);
    std::vector<double> e(n_embd_, 0.0);
    if (cls) {
      e = h[0];
    } else {
      for (const auto& row : h)
        for (int64_t d = 0; d < n_embd_; ++d) e[d] += row[d] / static_cast<double>(h.size());
    }
    double ss = 0.0;
    for (double x : e) ss += x * x;
    for (double& x : e) x /= std::sqrt(ss);
    return e;
  }

 private:
  int64_t Key(const char* key) const { return static_cast<int64_t>(*f_.GetU64(key)); }

  // Row r of a tensor as doubles (an absent tensor reads as zeros: optional biases).
  std::vector<double> Row(const std::string& name, int64_t r) const {
    const gguf::TensorInfo* t = f_.FindTensor(name);
    if (t == nullptr) return std::vector<double>(n_embd_, 0.0);
    const int64_t n = t->ne[0];
    const size_t row_bytes = t->nbytes / static_cast<size_t>(t->n_rows());
    std::vector<float> tmp(n);
    EXPECT_TRUE(DequantizeRow(t->type, t->data + r * row_bytes, tmp.data(), n).ok()) << name;
    return std::vector<double>(tmp.begin(), tmp.end());
  }

  // W x + b for the matrix `name`.weight (n_out rows of n_in) and its bias.
  std::vector<double> Linear(const std::string& name, const std::vector<double>& x) const {
    const gguf::TensorInfo* w = f_.FindTensor(name + ".weight");
    const gguf::TensorInfo* b = f_.FindTensor(name + ".bias");
    std::vector<double> y(w->ne[1], 0.0);
    for (int64_t o = 0; o < w->ne[1]; ++o) {
      const std::vector<double> row = Row(name + ".weight", o);
      double acc = 0.0;
      for (size_t i = 0; i < x.size(); ++i) acc += row[i] * x[i];
      y[o] = acc;
    }
    if (b != nullptr) {
      const std::vector<double> bias = Row(name + ".bias", 0);
      for (size_t o = 0; o < y.size(); ++o) y[o] += bias[o];
    }
    return y;
  }

  std::vector<double> LayerNorm(const std::vector<double>& x, const std::string& name) const {
    const std::vector<double> w = Row(name + ".weight", 0), b = Row(name + ".bias", 0);
    double mean = 0.0, var = 0.0;
    for (double v : x) mean += v / static_cast<double>(x.size());
    for (double v : x) var += (v - mean) * (v - mean) / static_cast<double>(x.size());
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + eps_) * w[i] + b[i];
    return y;
  }

  const gguf::GgufFile& f_;
  int64_t n_embd_ = 0, n_head_ = 0, n_layer_ = 0;
  double eps_ = 0;
};

inline double MaxAbsDiff(const std::vector<float>& got, const std::vector<double>& want) {
  double m = 0.0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) m = std::max(m, std::fabs(got[i] - want[i]));
  return got.size() == want.size() ? m : 1e300;
}

inline double Cosine(const std::vector<float>& a, const std::vector<double>& b) {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += a[i] * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += b[i] * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace llmesh::engine::testing
