// Fakes for the agent loop's dependencies: a scripted model (each Generate
// pops the next scripted reply and records the request), tools with
// scripted behaviour (answer, fail, block until the deadline or a cancel,
// overrun their deadline), and a retriever.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "llmesh/agent/builtin_tools.h"
#include "llmesh/agent/llm_backend.h"
#include "llmesh/agent/tool.h"

namespace llmesh::agent::testing {

struct Reply {
  absl::Status status;  // non-OK: Generate fails with it
  std::string text;
  v1::FinishReason finish = v1::FINISH_REASON_STOP;
  int32_t prompt_tokens = 20;
  int32_t completion_tokens = 10;
  // Before replying: wait this long (or until the deadline / a cancel,
  // which end the call with DEADLINE_EXCEEDED / CANCELLED as a real one would).
  absl::Duration delay = absl::ZeroDuration();
};

inline Reply Answer(const std::string& text, int32_t tokens = 10) {
  return Reply{absl::OkStatus(), absl::StrCat(R"({"final_answer":")", text, R"("})"), v1::FINISH_REASON_STOP, 20,
               tokens};
}
inline Reply CallTool(const std::string& tool, const std::string& args_json, int32_t tokens = 10,
                      const std::string& thought = "let me check") {
  return Reply{absl::OkStatus(),
               absl::StrCat(R"({"thought":")", thought, R"(","tool":")", tool, R"(","arguments":)", args_json, "}"),
               v1::FINISH_REASON_STOP, 20, tokens};
}

inline Reply Failure(absl::Status status) {
  Reply r;
  r.status = std::move(status);
  return r;
}

class ScriptedBackend : public LlmBackend {
 public:
  void Push(Reply r) {
    std::lock_guard lock(mu_);
    script_.push_back(std::move(r));
  }

  absl::StatusOr<Generation> Generate(const GenerationRequest& request, const CallOptions& opts) override {
    Reply r;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
      if (script_.empty()) return absl::FailedPreconditionError("the script has no more replies");
      r = std::move(script_.front());
      script_.pop_front();
    }
    if (r.delay > absl::ZeroDuration()) {
      absl::Time until = std::min(absl::Now() + r.delay, opts.deadline);
      if (opts.cancel->WaitUntil(until)) return absl::CancelledError("cancelled");
      if (absl::Now() >= opts.deadline) return absl::DeadlineExceededError("deadline exceeded");
    }
    if (!r.status.ok()) return r.status;
    Generation g;
    g.text = r.text;
    g.finish_reason = r.finish;
    g.prompt_tokens = r.prompt_tokens;
    g.completion_tokens = r.completion_tokens;
    return g;
  }

  // The fake's context and token count: 4 bytes a token, 4 more per message
  // and for the open assistant turn.
  absl::StatusOr<int32_t> ContextLength(const std::string&, const CallOptions&) override {
    std::lock_guard lock(mu_);
    return n_ctx_;
  }
  absl::StatusOr<int32_t> CountPromptTokens(const std::string&, const std::vector<v1::ChatMessage>& messages,
                                            const CallOptions&) override {
    return Tokens(messages);
  }
  static int32_t Tokens(const std::vector<v1::ChatMessage>& messages) {
    int32_t n = 4;
    for (const auto& m : messages) n += 4 + static_cast<int32_t>((m.content().size() + 3) / 4);
    return n;
  }
  void set_n_ctx(absl::StatusOr<int32_t> n_ctx) {
    std::lock_guard lock(mu_);
    n_ctx_ = std::move(n_ctx);
  }

  std::vector<GenerationRequest> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::deque<Reply> script_;
  std::vector<GenerationRequest> requests_;
  absl::StatusOr<int32_t> n_ctx_ = 32768;
};

// A tool whose behaviour a test chooses.
class FakeTool : public Tool {
 public:
  enum class Mode {
    kEcho,          // returns "echo:" + arguments
    kFail,          // returns UNKNOWN "tool exploded"
    kBlock,         // waits for the deadline (DEADLINE_EXCEEDED) or a cancel (CANCELLED)
    kIgnoreDeadline // sleeps `sleep` regardless, then answers
  };
  FakeTool(std::string name, Mode mode, absl::Duration sleep = absl::ZeroDuration()) : mode_(mode), sleep_(sleep) {
    spec_.set_name(std::move(name));
    spec_.set_description("a fake tool");
    spec_.set_parameters_json_schema(R"({"type":"object","properties":{"x":{"type":"string"}}})");
    spec_.set_address("127.0.0.1:1");
  }
  const v1::ToolSpec& spec() const override { return spec_; }

  absl::StatusOr<std::string> Call(const std::string& arguments_json, const ToolContext& ctx) override {
    {
      std::lock_guard lock(mu_);
      calls_.push_back(arguments_json);
      call_ids_.push_back(ctx.call_id);
    }
    switch (mode_) {
      case Mode::kEcho: return absl::StrCat("echo:", arguments_json);
      case Mode::kFail: return absl::UnknownError("tool exploded");
      case Mode::kBlock:
        if (ctx.cancel->WaitUntil(ctx.deadline)) return absl::CancelledError("cancelled");
        return absl::DeadlineExceededError("deadline exceeded");
      case Mode::kIgnoreDeadline:
        std::this_thread::sleep_for(absl::ToChronoMilliseconds(sleep_));
        return std::string("late but fine");
    }
    return absl::InternalError("unreachable");
  }

  std::vector<std::string> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<std::string> call_ids() {
    std::lock_guard lock(mu_);
    return call_ids_;
  }

 private:
  v1::ToolSpec spec_;
  Mode mode_;
  absl::Duration sleep_;
  std::mutex mu_;
  std::vector<std::string> calls_;
  std::vector<std::string> call_ids_;
};

class FakeRetriever : public Retriever {
 public:
  absl::StatusOr<v1::QueryResponse> Query(const v1::QueryRequest& request, const ToolContext&) override {
    last = request;
    v1::QueryResponse resp;
    auto* r = resp.add_results();
    r->set_document_id("doc-1");
    r->set_source("test://doc-1");
    r->set_score(0.5);
    r->set_text(absl::StrCat("a passage about ", request.query()));
    return resp;
  }
  v1::QueryRequest last;
};

}  // namespace llmesh::agent::testing
