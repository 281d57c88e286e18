// The conversation `llmesh chat` keeps, and how much of it fits the model's
// context: the system prompt always, then as many of the latest turns as
// leave room for the reply's max_tokens.
//
// Sizes are counted in tokens, not guessed from characters: the caller
// gives each message's content tokens (the gateway's Tokenize), and what the
// chat template adds around messages is measured from the gateway's own
// count of each prompt it rendered (the answer's usage.prompt_tokens).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/v1/common.pb.h"

namespace llmesh::cli {

class ChatHistory {
 public:
  // Template tokens assumed per message until an answer has measured them.
  static constexpr int32_t kUnmeasuredTemplateTokens = 16;

  explicit ChatHistory(std::string system_prompt);

  // Forgets every turn; the system prompt stays. Needs its token count first
  // (Fit fails until it is set, when there is a system prompt).
  void Reset();
  void SetSystemTokens(int32_t tokens) { system_tokens_ = tokens; }
  const std::string& system_prompt() const { return system_; }

  void Add(const std::string& role, const std::string& content, int32_t content_tokens);
  // Forgets the latest message (a question whose answer failed).
  void PopBack();

  // Drops the oldest turns (never the system prompt nor the latest message)
  // until the prompt plus `reply_tokens` fits `n_ctx`; a turn's answer goes
  // with its question, so the kept history starts with a user message.
  // INVALID_ARGUMENT, dropping nothing, when even the latest message alone
  // does not fit.
  absl::Status Fit(int32_t n_ctx, int32_t reply_tokens);

  // The prompt Messages() renders to, as estimated.
  int32_t PromptTokens() const;
  // Learns the template's share from the gateway's count of the prompt that
  // Messages() rendered to.
  void Measured(int32_t prompt_tokens);

  std::vector<v1::ChatMessage> Messages() const;
  size_t turns_dropped() const { return dropped_; }

 private:
  struct Entry {
    v1::ChatMessage message;
    int32_t tokens;
  };
  int32_t Estimate(size_t first) const;  // the prompt of turns_[first..]
  int32_t Frames(size_t first) const;    // message frames in that prompt

  std::string system_;
  int32_t system_tokens_ = -1;
  std::vector<Entry> turns_;
  // Tokens the template adds per message frame (each message, and the open
  // assistant turn the reply goes into).
  int32_t template_tokens_ = kUnmeasuredTemplateTokens;
  bool measured_ = false;
  size_t dropped_ = 0;
};

}  // namespace llmesh::cli
