// Shared by grammar_test and json_schema_test: sample many constrained
// outputs from the real stories260K model, all sequences batched together
// (one forward step per position), and report each output's text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/batch.h"
#include "llmesh/engine/forward.h"
#include "llmesh/engine/grammar.h"
#include "llmesh/engine/model.h"
#include "llmesh/engine/sampler.h"
#include "llmesh/engine/thread_pool.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace llmesh::engine::testing {

struct SampledOutput {
  std::string text;     // concatenated pieces of the generated tokens
  bool ended = false;   // an EOG token was sampled
  int32_t n_tokens = 0;
};

class StoriesSampler {
 public:
  StoriesSampler() {
    const std::string path = std::string(LLMESH_SHARED_DIR) + "/models/stories260K.gguf";
    auto m = Model::Load(path);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return;
    model_ = std::move(*m);
    auto t = tokenizer::Tokenizer::FromGguf(model_->file());
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return;
    tok_ = std::move(*t);
    pieces_ = TokenPieces::FromTokenizer(*tok_, static_cast<int32_t>(model_->params().n_vocab));
  }
  bool ok() const { return pieces_ != nullptr; }
  const std::shared_ptr<const TokenPieces>& pieces() const { return pieces_; }
  const Model& model() const { return *model_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tok_; }
  ThreadPool& pool() { return pool_; }

  // n outputs for `config` (seed i for output i), at most max_tokens each.
  std::vector<SampledOutput> Sample(SamplingConfig config, int n, int32_t max_tokens) {
    const int32_t n_vocab = static_cast<int32_t>(model_->params().n_vocab);
    std::vector<std::unique_ptr<Sampler>> samplers;
    for (int i = 0; i < n; ++i) {
      config.seed = static_cast<uint64_t>(i);
      auto s = Sampler::Create(config, n_vocab, pieces_);
      EXPECT_TRUE(s.ok()) << s.status();
      if (!s.ok()) return {};
      samplers.push_back(std::move(*s));
    }
    std::vector<SampledOutput> out(n);
    auto kv = MakeKvCache(*model_, max_tokens + 2, n);
    ForwardContext ctx(*model_, pool_, 512);
    std::vector<TokenId> last(n, tok_->bos_id());
    std::vector<uint8_t> active(n, 1);
    ForwardOutput fo;
    for (int32_t pos = 0; pos < max_tokens; ++pos) {
      Batch batch;
      for (int i = 0; i < n; ++i) {
        if (active[i]) batch.Add(last[i], pos, i, true);
      }
      if (batch.n_tokens() == 0) break;
      auto st = ctx.Decode(batch, *kv, &fo);
      EXPECT_TRUE(st.ok()) << st;
      if (!st.ok()) return {};
      for (int32_t b = 0; b < batch.n_tokens(); ++b) {
        const int i = batch.seq_id[b];
        const SampleResult r = samplers[i]->Sample(fo.ForBatchEntry(b));
        samplers[i]->Accept(r.token);
        ++out[i].n_tokens;
        if (tok_->is_eog(r.token)) {
          out[i].ended = true;
          active[i] = 0;
          continue;
        }
        out[i].text += pieces_->piece(r.token);
        last[i] = r.token;
      }
    }
    return out;
  }

 private:
  ThreadPool pool_{2};
  std::unique_ptr<Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  std::shared_ptr<const TokenPieces> pieces_;
};

// Whether `text` is a prefix of some sentence of the grammar.
inline bool IsGrammarPrefix(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g);
  return m.AcceptBytes(text);
}

}  // namespace llmesh::engine::testing
