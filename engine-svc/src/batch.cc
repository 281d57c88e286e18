#include "llmesh/engine/batch.h"

#include "absl/strings/str_format.h"

namespace llmesh::engine {

int32_t Batch::n_outputs() const {
  int32_t n = 0;
  for (uint8_t o : output) n += o != 0;
  return n;
}

void Batch::Add(TokenId t, int32_t p, SeqId s, bool want_output) {
  token.push_back(t);
  pos.push_back(p);
  seq_id.push_back(s);
  output.push_back(want_output ? 1 : 0);
}

void Batch::Clear() {
  token.clear();
  pos.clear();
  seq_id.clear();
  output.clear();
}

void Batch::AddSequence(const std::vector<TokenId>& tokens, int32_t pos0, SeqId s,
                        bool all_outputs) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    Add(tokens[i], pos0 + static_cast<int32_t>(i), s, all_outputs || i + 1 == tokens.size());
  }
}

absl::Status Batch::Validate(int64_t n_vocab, int64_t n_ctx) const {
  const size_t n = token.size();
  if (pos.size() != n || seq_id.size() != n || output.size() != n) {
    return absl::InvalidArgumentError("batch arrays have different lengths");
  }
  if (n == 0) return absl::InvalidArgumentError("empty batch");
  for (size_t i = 0; i < n; ++i) {
    if (token[i] < 0 || token[i] >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "batch token %d: id %d outside vocabulary [0, %d)", i, token[i], n_vocab));
    }
    if (pos[i] < 0 || pos[i] >= n_ctx) {
      return absl::InvalidArgumentError(
          absl::StrFormat("batch token %d: position %d outside context [0, %d)", i, pos[i], n_ctx));
    }
    if (seq_id[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("batch token %d: negative sequence id %d", i, seq_id[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace llmesh::engine
