// The BERT encoder forward pass (llama.cpp's LLM_ARCH_BERT graph): whole
// sequences at once, every token attending to every token of its own
// sequence in both directions, no KV cache.
//
//   x = LayerNorm(tok_embd[t] + token_types[0] + position_embd[pos])
//   per layer:  x = LayerNorm(x + Attention(x))      (post-norm)
//               x = LayerNorm(x + W_down GELU(W_up x + b_up) + b_down)
//   embedding = L2-normalise(pool(x))                 (mean, CLS or last)
//
// Several sequences share each weight pass (their tokens are packed into one
// matrix), so embedding a batch of texts costs one pass per n_ubatch tokens.
// A BertForward owns its scratch buffers: one per thread that runs it; the
// BertModel is shared.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/engine/batch.h"
#include "llmesh/engine/bert_model.h"
#include "llmesh/engine/pooling.h"
#include "llmesh/engine/thread_pool.h"

namespace llmesh::engine {

class BertForward {
 public:
  // n_ubatch: most tokens pushed through the layers at once; sequences are
  // packed into groups up to that size (a longer sequence runs alone).
  BertForward(const BertModel& model, ThreadPool& pool, int32_t n_ubatch = 512);

  // Checks every sequence before anything runs: non-empty, token ids inside
  // the vocabulary, at most n_ctx_train tokens (the learned positions).
  // INVALID_ARGUMENT naming the sequence otherwise.
  absl::Status Validate(const std::vector<std::vector<TokenId>>& seqs) const;

  // The final hidden states: (*hidden)[s] is (n_tokens of s, n_embd).
  absl::Status Encode(const std::vector<std::vector<TokenId>>& seqs,
                      std::vector<std::vector<float>>* hidden);

  // One L2-normalised (n_embd) vector per sequence. kDefault pools as the
  // model's pooling_type says.
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::vector<TokenId>>& seqs, Pooling pooling);

  const BertModel& model() const { return model_; }

 private:
  // Runs seqs[begin, end) packed together; leaves their final hidden states
  // in x_, sequence s starting at row seq_start_[s - begin].
  void RunGroup(const std::vector<std::vector<TokenId>>& seqs, size_t begin, size_t end);
  // att_ = softmax(Q K^T / sqrt(head_dim)) V per sequence and head.
  void Attention(int32_t n_tokens);
  // The end of the group starting at seqs[begin].
  size_t GroupEnd(const std::vector<std::vector<TokenId>>& seqs, size_t begin) const;
  void Reserve(int32_t n_tokens, int32_t max_len);

  const BertModel& model_;
  ThreadPool& pool_;
  const int32_t n_ubatch_;

  // Scratch, sized for the group's T tokens:
  std::vector<float> x_;       // (T, n_embd) hidden state (the residual stream)
  std::vector<float> tmp_;     // (T, n_embd) sublayer output, then x + output
  std::vector<float> q_;       // (T, n_embd)
  std::vector<float> k_;       // (T, n_embd)
  std::vector<float> v_;       // (T, n_embd)
  std::vector<float> att_;     // (T, n_embd) attention output, heads side by side
  std::vector<float> hb_;      // (T, n_ff) FFN hidden layer
  std::vector<float> scores_;  // (n_threads, max_len) attention weights per worker
  std::vector<int32_t> tok_seq_start_;  // (T) first row of each token's sequence
  std::vector<int32_t> tok_seq_len_;    // (T) length of each token's sequence
  std::vector<int32_t> seq_start_;      // (n_seqs in group) first row of each
  int32_t max_len_ = 0;                 // longest sequence scores_ holds
};

}  // namespace llmesh::engine
