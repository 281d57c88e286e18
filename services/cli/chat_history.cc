#include "chat_history.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace llmesh::cli {

ChatHistory::ChatHistory(std::string system_prompt) : system_(std::move(system_prompt)) {}

void ChatHistory::Reset() {
  turns_.clear();
  dropped_ = 0;
}

void ChatHistory::Add(const std::string& role, const std::string& content, int32_t content_tokens) {
  Entry e{{}, content_tokens};
  e.message.set_role(role);
  e.message.set_content(content);
  turns_.push_back(std::move(e));
}

void ChatHistory::PopBack() {
  if (!turns_.empty()) turns_.pop_back();
}

int32_t ChatHistory::Frames(size_t first) const {
  return (system_.empty() ? 0 : 1) + static_cast<int32_t>(turns_.size() - first) + 1;
}

int32_t ChatHistory::Estimate(size_t first) const {
  int32_t tokens = system_.empty() ? 0 : system_tokens_;
  for (size_t i = first; i < turns_.size(); ++i) tokens += turns_[i].tokens;
  return tokens + template_tokens_ * Frames(first);
}

int32_t ChatHistory::PromptTokens() const { return Estimate(0); }

void ChatHistory::Measured(int32_t prompt_tokens) {
  const int32_t frames = Frames(0);
  const int32_t content = Estimate(0) - template_tokens_ * frames;
  const int32_t per_frame = std::max(0, (prompt_tokens - content + frames - 1) / frames);
  // The largest share seen: role names differ in length, and an estimate
  // that errs high drops a turn early rather than overflowing the context.
  template_tokens_ = measured_ ? std::max(template_tokens_, per_frame) : per_frame;
  measured_ = true;
}

absl::Status ChatHistory::Fit(int32_t n_ctx, int32_t reply_tokens) {
  if (turns_.empty()) return absl::FailedPreconditionError("no message to answer");
  if (!system_.empty() && system_tokens_ < 0)
    return absl::FailedPreconditionError("the system prompt's tokens are not counted yet");
  const int32_t budget = n_ctx - reply_tokens;
  for (size_t first = 0; first < turns_.size(); ++first) {
    if (first + 1 < turns_.size() && turns_[first].message.role() != "user") continue;
    if (Estimate(first) > budget) continue;
    turns_.erase(turns_.begin(), turns_.begin() + static_cast<std::ptrdiff_t>(first));
    dropped_ += first;
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("the message has ", turns_.back().tokens, " tokens; with ",
                   system_.empty() ? "" : "the system prompt, ", "the chat template and room for a ", reply_tokens,
                   "-token reply it needs ", Estimate(turns_.size() - 1) + reply_tokens, ", and the context holds ",
                   n_ctx, " (shorten it, or lower --max-tokens)"));
}

std::vector<v1::ChatMessage> ChatHistory::Messages() const {
  std::vector<v1::ChatMessage> out;
  if (!system_.empty()) {
    v1::ChatMessage sys;
    sys.set_role("system");
    sys.set_content(system_);
    out.push_back(std::move(sys));
  }
  for (const auto& e : turns_) out.push_back(e.message);
  return out;
}

}  // namespace llmesh::cli
