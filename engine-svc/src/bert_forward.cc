// BERT forward pass, read top to bottom: embeddings, then each layer's
// attention and feed-forward blocks, each followed by a residual add and a
// LayerNorm. The matmuls (MatMul on the pool) are the hot path; everything
// else is O(T * n_embd) per layer.
#include "llmesh/engine/bert_forward.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "llmesh/engine/encoder_ops.h"
#include "llmesh/engine/matmul.h"
#include "llmesh/engine/model.h"
#include "llmesh/engine/ops.h"

namespace llmesh::engine {
namespace {

// y[t] += bias for each of the n_tok rows of y (n values each); no-op when
// the file has no such bias.
void AddBias(float* y, const float* bias, int64_t n_tok, int64_t n) {
  if (bias == nullptr) return;
  for (int64_t t = 0; t < n_tok; ++t) add(y + t * n, y + t * n, bias, n);
}

}  // namespace

BertForward::BertForward(const BertModel& model, ThreadPool& pool, int32_t n_ubatch)
    : model_(model), pool_(pool), n_ubatch_(std::max<int32_t>(1, n_ubatch)) {}

absl::Status BertForward::Validate(const std::vector<std::vector<TokenId>>& seqs) const {
  const BertParams& hp = model_.params();
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (seqs[s].empty()) return absl::InvalidArgumentError(absl::StrCat("input ", s, " is empty"));
    if (static_cast<int64_t>(seqs[s].size()) > hp.n_ctx_train) {
      return absl::InvalidArgumentError(absl::StrCat("input ", s, " has ", seqs[s].size(),
                                                     " tokens; the model has ", hp.n_ctx_train,
                                                     " positions"));
    }
    for (TokenId t : seqs[s]) {
      if (t < 0 || t >= hp.n_vocab) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input ", s, ": token id ", t, " is outside the vocabulary [0, ", hp.n_vocab, ")"));
      }
    }
  }
  return absl::OkStatus();
}

void BertForward::Reserve(int32_t n_tokens, int32_t max_len) {
  const BertParams& hp = model_.params();
  const size_t t = static_cast<size_t>(n_tokens);
  if (x_.size() < t * hp.n_embd) {
    for (auto* b : {&x_, &tmp_, &q_, &k_, &v_, &att_}) b->resize(t * hp.n_embd);
    hb_.resize(t * hp.n_ff);
  }
  if (max_len > max_len_) {
    max_len_ = max_len;
    scores_.resize(static_cast<size_t>(pool_.n_threads()) * max_len_);
  }
}

size_t BertForward::GroupEnd(const std::vector<std::vector<TokenId>>& seqs, size_t begin) const {
  size_t end = begin + 1;
  size_t total = seqs[begin].size();
  while (end < seqs.size() && total + seqs[end].size() <= static_cast<size_t>(n_ubatch_)) {
    total += seqs[end].size();
    ++end;
  }
  return end;
}

void BertForward::Attention(int32_t n_tokens) {
  const BertParams& hp = model_.params();
  const int64_t n_embd = hp.n_embd, hd = hp.head_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t n_items = static_cast<int64_t>(n_tokens) * hp.n_head;  // (token, head) pairs
  pool_.Run([&](int ith, int nth) {
    float* scores = scores_.data() + static_cast<size_t>(ith) * max_len_;  // (max_len)
    for (int64_t item = n_items * ith / nth; item < n_items * (ith + 1) / nth; ++item) {
      const int64_t i = item / hp.n_head, h = item % hp.n_head;
      const int32_t start = tok_seq_start_[i], len = tok_seq_len_[i];
      const float* q = q_.data() + i * n_embd + h * hd;  // (hd) this token's query, head h
      // Bidirectional: every token of the sequence, before and after i.
      for (int32_t j = 0; j < len; ++j) {
        const float* k = k_.data() + (start + j) * n_embd + h * hd;
        scores[j] = dot_f32(q, k, hd) * scale;
      }
      softmax(scores, len);
      float* out = att_.data() + i * n_embd + h * hd;  // (hd)
      std::fill_n(out, hd, 0.0f);
      for (int32_t j = 0; j < len; ++j) {
        axpy(out, scores[j], v_.data() + (start + j) * n_embd + h * hd, hd);
      }
    }
  });
}

void BertForward::RunGroup(const std::vector<std::vector<TokenId>>& seqs, size_t begin,
                           size_t end) {
  const BertParams& hp = model_.params();
  const int64_t n_embd = hp.n_embd, n_ff = hp.n_ff;
  int32_t n_tok = 0, max_len = 0;
  for (size_t s = begin; s < end; ++s) {
    n_tok += static_cast<int32_t>(seqs[s].size());
    max_len = std::max(max_len, static_cast<int32_t>(seqs[s].size()));
  }
  Reserve(n_tok, max_len);
  tok_seq_start_.resize(n_tok);
  tok_seq_len_.resize(n_tok);
  seq_start_.clear();

  // Embeddings: word + token type 0 + learned position, then LayerNorm.
  const std::vector<float>& type0 = model_.type_embd_row0();
  int32_t row = 0;
  for (size_t s = begin; s < end; ++s) {
    const int32_t len = static_cast<int32_t>(seqs[s].size());
    seq_start_.push_back(row);
    for (int32_t p = 0; p < len; ++p, ++row) {
      float* x = x_.data() + static_cast<size_t>(row) * n_embd;
      float* pos = tmp_.data() + static_cast<size_t>(row) * n_embd;
      DequantizeWeightRow(model_.tok_embd(), seqs[s][p], x);
      DequantizeWeightRow(model_.pos_embd(), p, pos);  // positions restart at 0 per sequence
      add(x, x, pos, n_embd);
      add(x, x, type0.data(), n_embd);
      layer_norm(x, x, model_.embd_norm(), model_.embd_norm_b(), n_embd, hp.norm_eps);
      tok_seq_start_[row] = seq_start_.back();
      tok_seq_len_[row] = len;
    }
  }

  // Residual add then LayerNorm, row by row: x = LayerNorm(x + tmp).
  auto add_norm = [&](const float* w, const float* b) {
    pool_.ParallelFor(n_tok, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* x = x_.data() + t * n_embd;
        float* y = tmp_.data() + t * n_embd;
        add(y, y, x, n_embd);
        layer_norm(x, y, w, b, n_embd, hp.norm_eps);
      }
    });
  };

  // The hot loop: six matmuls per layer over all T tokens at once.
  for (const BertLayerWeights& L : model_.layers()) {
    // Self-attention block.
    MatMul(pool_, L.wq, x_.data(), n_tok, q_.data());
    MatMul(pool_, L.wk, x_.data(), n_tok, k_.data());
    MatMul(pool_, L.wv, x_.data(), n_tok, v_.data());
    AddBias(q_.data(), L.bq, n_tok, n_embd);
    AddBias(k_.data(), L.bk, n_tok, n_embd);
    AddBias(v_.data(), L.bv, n_tok, n_embd);
    Attention(n_tok);
    MatMul(pool_, L.wo, att_.data(), n_tok, tmp_.data());
    AddBias(tmp_.data(), L.bo, n_tok, n_embd);
    add_norm(L.attn_out_norm, L.attn_out_norm_b);

    // Feed-forward block: up, GELU, down.
    MatMul(pool_, L.w_up, x_.data(), n_tok, hb_.data());
    pool_.ParallelFor(n_tok, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* h = hb_.data() + t * n_ff;
        if (L.b_up != nullptr) add(h, h, L.b_up, n_ff);
        gelu(h, n_ff);
      }
    });
    MatMul(pool_, L.w_down, hb_.data(), n_tok, tmp_.data());
    AddBias(tmp_.data(), L.b_down, n_tok, n_embd);
    add_norm(L.out_norm, L.out_norm_b);
  }
}

absl::Status BertForward::Encode(const std::vector<std::vector<TokenId>>& seqs,
                                 std::vector<std::vector<float>>* hidden) {
  if (auto s = Validate(seqs); !s.ok()) return s;
  const int64_t n_embd = model_.params().n_embd;
  hidden->assign(seqs.size(), {});
  for (size_t begin = 0; begin < seqs.size();) {
    const size_t end = GroupEnd(seqs, begin);
    RunGroup(seqs, begin, end);
    for (size_t s = begin; s < end; ++s) {
      const float* rows = x_.data() + static_cast<size_t>(seq_start_[s - begin]) * n_embd;
      (*hidden)[s].assign(rows, rows + seqs[s].size() * n_embd);
    }
    begin = end;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<float>>> BertForward::Embed(
    const std::vector<std::vector<TokenId>>& seqs, Pooling pooling) {
  if (auto s = Validate(seqs); !s.ok()) return s;
  if (pooling == Pooling::kDefault) pooling = model_.params().pooling;
  const int64_t n_embd = model_.params().n_embd;
  std::vector<std::vector<float>> out;
  out.reserve(seqs.size());
  for (size_t begin = 0; begin < seqs.size();) {
    const size_t end = GroupEnd(seqs, begin);
    RunGroup(seqs, begin, end);
    for (size_t s = begin; s < end; ++s) {
      const float* rows = x_.data() + static_cast<size_t>(seq_start_[s - begin]) * n_embd;
      out.push_back(PoolAndNormalizeRows(rows, static_cast<int64_t>(seqs[s].size()), n_embd,
                                         pooling));
    }
    begin = end;
  }
  return out;
}

}  // namespace llmesh::engine
