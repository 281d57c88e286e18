// The agent loop. One Run:
//   1. validates the request (INVALID_ARGUMENT before any step), loads or
//      creates the session, appends the input;
//   2. each turn renders the conversation (prompt.h), asks the backend for a
//      completion constrained to the turn's JSON Schema (turn_format.h),
//      stores the model's turn, and streams THOUGHT + TOOL_CALL, runs the
//      tool (with a timeout; a failure is an observation), streams
//      TOOL_RESULT — or streams FINAL_ANSWER and stops;
//   3. ends with ERROR (when a limit or a failure ended it) and USAGE.
// Every step is stored before it is streamed, so a session resumed after a
// restart (or read with GetSession) holds exactly what the client saw.
//
// Limits: max_steps turns (the last may only answer), max_tokens generated
// in all (each generation gets what is left, at most what the model's
// context leaves after the prompt), a wall-clock budget (the
// deadline of every model and tool call), a per-tool-call timeout. Hitting a
// limit ends the run with an ERROR step and an OK status; a cancel
// (RunEnv::cancel) ends it with CANCELLED within one model or tool call.
//
// The model's context bounds every turn: the prompt keeps room for the
// reply (a quarter of the context, else an eighth, or the tokens left when
// fewer) by leaving out earlier runs' messages, then this run's oldest
// steps, then cutting observations (prompt_budget.h). A run whose task alone does not fit, or
// whose turn fills the context before it is complete, ends like a limit.
#pragma once

#include <functional>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "llmesh/agent/builtin_tools.h"
#include "llmesh/agent/cancellation.h"
#include "llmesh/agent/llm_backend.h"
#include "llmesh/agent/store.h"
#include "llmesh/agent/tool_registry.h"
#include "llmesh/v1/agent.pb.h"

namespace llmesh::agent {

struct AgentOptions {
  std::string default_model;          // when neither the request nor the session names one
  std::string default_rag_collection; // rag_search's collection when the request names none
  // Limits a request leaves at 0 ...
  int32_t default_max_steps = 8;
  int32_t default_max_tokens = 1024;
  absl::Duration default_max_wall = absl::Seconds(60);
  absl::Duration default_tool_timeout = absl::Seconds(10);
  // ... and the most a request may ask for.
  int32_t max_steps_cap = 64;
  int32_t max_tokens_cap = 32768;
  absl::Duration max_wall_cap = absl::Minutes(30);
  absl::Duration tool_timeout_cap = absl::Minutes(5);
  size_t max_input_bytes = 64 << 10;        // input and system prompt, each
  size_t max_tools = 32;                    // per run
  size_t max_tool_output_bytes = 8 << 10;   // an observation is cut here
  size_t max_history_messages = 64;         // of the session, in each prompt
};

// What the transport knows about a run.
struct RunEnv {
  absl::Time deadline = absl::InfiniteFuture();  // the client's deadline
  const Cancellation* cancel = nullptr;          // required
  std::string request_id;
};

// Receives each step as it happens (after it is stored).
using StepSink = std::function<void(const v1::AgentStep&)>;

class Agent {
 public:
  // `retriever` may be null: rag_search is then unavailable.
  Agent(AgentOptions options, LlmBackend& backend, AgentStore& store, ToolRegistry& registry,
        Retriever* retriever);

  // OK when the run answered or hit a limit; INVALID_ARGUMENT / NOT_FOUND /
  // FAILED_PRECONDITION (session busy) before any step; CANCELLED,
  // DEADLINE_EXCEEDED (the client's deadline) or the backend's error after
  // the ERROR and USAGE steps.
  absl::Status Run(const v1::AgentRunRequest& request, const RunEnv& env, const StepSink& sink);

  const AgentOptions& options() const { return options_; }

 private:
  AgentOptions options_;
  LlmBackend& backend_;
  AgentStore& store_;
  ToolRegistry& registry_;
  Retriever* retriever_;
  std::mutex mu_;
  std::set<std::string> running_;  // sessions with a run in progress
};

}  // namespace llmesh::agent
