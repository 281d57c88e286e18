// A batch of tokens for one forward pass, possibly from several sequences
// (continuous batching). Like llama_batch: parallel arrays, one entry per
// token. Every weight is applied once to all tokens together; attention runs
// per token over its own sequence's cached K/V.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace llmesh::engine {

using SeqId = int32_t;
using TokenId = int32_t;

struct Batch {
  std::vector<TokenId> token;   // (n_tokens)
  std::vector<int32_t> pos;     // (n_tokens) position within its sequence
  std::vector<SeqId> seq_id;    // (n_tokens)
  std::vector<uint8_t> output;  // (n_tokens) 1 => produce logits/embedding for this token

  int32_t n_tokens() const { return static_cast<int32_t>(token.size()); }
  int32_t n_outputs() const;
  void Add(TokenId t, int32_t p, SeqId s, bool want_output);
  void Clear();

  // Appends tokens[0..n) of one sequence at positions pos0.. and asks for
  // output at the last one only (or at every one with all_outputs).
  void AddSequence(const std::vector<TokenId>& tokens, int32_t pos0, SeqId s,
                   bool all_outputs = false);

  // Structural checks against a model: ids in [0, n_vocab), positions in
  // [0, n_ctx), non-negative sequence ids, parallel arrays of equal length.
  absl::Status Validate(int64_t n_vocab, int64_t n_ctx) const;
};

}  // namespace llmesh::engine
