#include "llmesh/agent/agent.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "llmesh/agent/prompt.h"
#include "llmesh/agent/prompt_budget.h"
#include "llmesh/agent/turn_format.h"
#include "llmesh/common/logging.h"
#include "spdlog/spdlog.h"

namespace llmesh::agent {

namespace {

// A validated request: what the run may do.
struct Plan {
  std::string model;
  std::string system_prompt;
  std::vector<std::shared_ptr<Tool>> tools;
  std::vector<v1::ToolSpec> specs;
  std::string forced_tool;  // tool_choice naming a tool
  bool required = false;    // tool_choice "required"
  bool none = false;        // tool_choice "none"
  int32_t max_steps = 0;
  int32_t max_tokens = 0;
  absl::Duration max_wall;
  absl::Duration tool_timeout;
  v1::AgentSession session;  // with history
};

template <typename T>
absl::StatusOr<T> Limit(T requested, T def, T cap, const char* name) {
  if (requested < T{}) return absl::InvalidArgumentError(absl::StrCat("limits.", name, " must not be negative"));
  if (requested == T{}) return def;
  if (requested > cap) return absl::InvalidArgumentError(absl::StrCat("limits.", name, " is above the cap of ", cap));
  return requested;
}

absl::StatusOr<absl::Duration> LimitMs(int64_t ms, absl::Duration def, absl::Duration cap, const char* name) {
  auto v = Limit<int64_t>(ms, absl::ToInt64Milliseconds(def), absl::ToInt64Milliseconds(cap), name);
  if (!v.ok()) return v.status();
  return absl::Milliseconds(*v);
}

// One run's mutable state and the steps it emits.
class RunLoop {
 public:
  RunLoop(const AgentOptions& options, LlmBackend& backend, AgentStore& store, const RunEnv& env,
          const StepSink& sink, const v1::AgentRunRequest& request, const std::string& session_id)
      : options_(options), backend_(backend), store_(store), env_(env), sink_(sink), request_(request),
        session_id_(session_id) {}

  absl::Status Go(const Plan& plan, std::vector<v1::ChatMessage> history, int32_t first_step);

  int32_t steps_done() const { return step_ - first_step_ + 1; }
  const v1::Usage& usage() const { return usage_; }

 private:
  absl::Status Emit(v1::AgentStep step) {
    step.set_session_id(session_id_);
    step.set_step(step_);
    if (auto st = store_.AppendStep(session_id_, step); !st.ok()) return st;
    sink_(step);
    return absl::OkStatus();
  }
  absl::Status Append(v1::ChatMessage m) {
    if (auto st = store_.AppendMessage(session_id_, m); !st.ok()) return st;
    history_.push_back(std::move(m));
    return absl::OkStatus();
  }
  // The last steps of every run: ERROR (when `error` is set), then USAGE.
  // Returns `outcome` unless storing fails.
  absl::Status End(absl::Status outcome, const std::string& error) {
    if (!error.empty()) {
      v1::AgentStep e;
      e.set_kind(v1::AGENT_STEP_KIND_ERROR);
      e.set_text(error);
      if (auto st = Emit(std::move(e)); !st.ok()) return st;
    }
    v1::AgentStep u;
    u.set_kind(v1::AGENT_STEP_KIND_USAGE);
    *u.mutable_usage() = usage_;
    if (auto st = Emit(std::move(u)); !st.ok()) return st;
    return outcome;
  }
  // Out of time: the run's own budget is a limit (OK); the client's deadline is an error.
  absl::Status EndOutOfTime() {
    if (wall_binding_)
      return End(absl::OkStatus(), absl::StrCat("wall-clock budget of ", absl::ToInt64Milliseconds(max_wall_),
                                                " ms exhausted"));
    return End(absl::DeadlineExceededError("the request's deadline passed"), "deadline exceeded");
  }
  absl::Status EndCancelled() { return End(absl::CancelledError("the run was cancelled"), "cancelled"); }
  bool cancelled() const { return env_.cancel->cancelled(); }

  // A model, template or count call that failed: cancelled, out of time, or the backend's error.
  absl::Status EndFailed(const absl::Status& st, const char* what) {
    if (cancelled()) return EndCancelled();
    if (absl::IsDeadlineExceeded(st) || absl::Now() >= deadline_) return EndOutOfTime();
    return End(st, absl::StrCat(what, " failed: ", st.message()));
  }

  // Runs one tool call; its failure or timeout is the observation.
  absl::Status CallTool(Tool& tool, const std::string& arguments_json, absl::Duration timeout);

  const AgentOptions& options_;
  LlmBackend& backend_;
  AgentStore& store_;
  const RunEnv& env_;
  const StepSink& sink_;
  const v1::AgentRunRequest& request_;
  std::string session_id_;
  std::vector<v1::ChatMessage> history_;
  v1::Usage usage_;
  int32_t step_ = 0;
  int32_t first_step_ = 1;
  absl::Time deadline_;
  absl::Duration max_wall_;
  bool wall_binding_ = false;
};

absl::Status RunLoop::Go(const Plan& plan, std::vector<v1::ChatMessage> history, int32_t first_step) {
  const auto& specs = plan.specs;
  const int32_t max_steps = plan.max_steps;
  const int32_t max_tokens = plan.max_tokens;
  history_ = std::move(history);
  first_step_ = first_step;
  step_ = first_step - 1;
  max_wall_ = plan.max_wall;
  const absl::Time budget_end = absl::Now() + plan.max_wall;
  wall_binding_ = budget_end <= env_.deadline;
  deadline_ = std::min(budget_end, env_.deadline);

  const size_t task = history_.size();
  v1::ChatMessage input;
  input.set_role("user");
  input.set_content(request_.input());
  if (auto st = Append(std::move(input)); !st.ok()) return st;

  const std::string system_message = SystemMessage(plan.system_prompt, specs);
  const CallOptions call{deadline_, env_.cancel, env_.request_id};
  auto n_ctx = backend_.ContextLength(plan.model, call);
  if (!n_ctx.ok()) return EndFailed(n_ctx.status(), "model call");
  const PromptCounter count = [&](const std::vector<v1::ChatMessage>& messages) {
    return backend_.CountPromptTokens(plan.model, messages, call);
  };

  for (int32_t turn = 1; turn <= max_steps; ++turn) {
    step_ = first_step + turn - 1;
    if (cancelled()) return EndCancelled();
    if (absl::Now() >= deadline_) return EndOutOfTime();
    const int32_t remaining = max_tokens - usage_.completion_tokens();
    if (remaining <= 0) return End(absl::OkStatus(), absl::StrCat("token budget of ", max_tokens, " exhausted"));

    // What this turn may do: a forced or required tool on the first turn,
    // only an answer on the last one (so a run ends with one).
    std::vector<v1::ToolSpec> allowed;
    bool allow_answer = true;
    if (turn == 1 && !plan.forced_tool.empty()) {
      for (const auto& s : specs)
        if (s.name() == plan.forced_tool) allowed.push_back(s);
      allow_answer = false;
    } else if (turn == 1 && plan.required) {
      allowed = specs;
      allow_answer = false;
    } else if (!plan.none && turn < max_steps) {
      allowed = specs;
    }
    auto schema = BuildTurnSchema(allowed, allow_answer);
    if (!schema.ok()) return End(schema.status(), std::string(schema.status().message()));
    std::vector<std::string> allowed_names;
    for (const auto& s : allowed) allowed_names.push_back(s.name());

    // The prompt leaves the turn room for its reply: a quarter of the
    // context (a turn is a short JSON object; a small model's system message
    // and tools can take half of it), else an eighth (enough for a short
    // answer), or what is left of the run's token budget when that is less.
    // The turn then gets all the room there is.
    absl::StatusOr<FittedPrompt> prompt;
    for (int32_t room : {*n_ctx / 4, *n_ctx / 8}) {
      prompt = FitPrompt(system_message, history_, task, options_.max_history_messages,
                         *n_ctx - std::min(remaining, room), count);
      if (!absl::IsOutOfRange(prompt.status())) break;
    }
    if (!prompt.ok()) {
      if (absl::IsOutOfRange(prompt.status()))
        return End(absl::OkStatus(), absl::StrCat("the model's context of ", *n_ctx,
                                                  " tokens cannot hold the next turn: ", prompt.status().message()));
      return EndFailed(prompt.status(), "model call");
    }
    if (prompt->dropped > 0 || prompt->observations_cut > 0)
      spdlog::debug("event=agent_prompt_fitted session={} step={} tokens={} n_ctx={} dropped={} cut={}", session_id_,
                    step_, prompt->tokens, *n_ctx, prompt->dropped, prompt->observations_cut);

    GenerationRequest gen_req;
    gen_req.model = plan.model;
    gen_req.messages = std::move(prompt->messages);
    gen_req.sampling = request_.sampling();
    gen_req.sampling.set_json_schema(*schema);
    gen_req.max_tokens = std::min(remaining, *n_ctx - prompt->tokens);
    auto gen = backend_.Generate(gen_req, call);
    if (!gen.ok()) return EndFailed(gen.status(), "model call");
    usage_.set_prompt_tokens(usage_.prompt_tokens() + gen->prompt_tokens);
    usage_.set_completion_tokens(usage_.completion_tokens() + gen->completion_tokens);
    usage_.set_total_tokens(usage_.prompt_tokens() + usage_.completion_tokens());
    usage_.set_cached_prompt_tokens(usage_.cached_prompt_tokens() + gen->cached_prompt_tokens);
    spdlog::debug("event=agent_turn session={} step={} finish={} tokens={} text={}", session_id_, step_,
                 static_cast<int>(gen->finish_reason), gen->completion_tokens, gen->text);

    auto turn_out = ParseTurn(gen->text, allowed_names, allow_answer);
    if (!turn_out.ok()) {
      if (gen->finish_reason == v1::FINISH_REASON_LENGTH) {
        std::string why = gen->completion_tokens >= remaining
                              ? absl::StrCat("token budget of ", max_tokens, " exhausted")
                              : std::string("the context window filled up");
        return End(absl::OkStatus(), absl::StrCat(why, " before the model finished its turn"));
      }
      // The grammar should make this impossible: the backend ignored json_schema.
      absl::Status st = absl::InternalError(absl::StrCat("the model's turn broke its schema: ", turn_out.status().message()));
      return End(st, std::string(st.message()));
    }
    v1::ChatMessage said;
    said.set_role("assistant");
    said.set_content(TurnToJson(*turn_out));
    if (auto st = Append(std::move(said)); !st.ok()) return st;

    if (turn_out->is_answer) {
      v1::AgentStep a;
      a.set_kind(v1::AGENT_STEP_KIND_FINAL_ANSWER);
      a.set_text(turn_out->answer);
      if (auto st = Emit(std::move(a)); !st.ok()) return st;
      return End(absl::OkStatus(), "");
    }
    if (!turn_out->thought.empty()) {
      v1::AgentStep t;
      t.set_kind(v1::AGENT_STEP_KIND_THOUGHT);
      t.set_text(turn_out->thought);
      if (auto st = Emit(std::move(t)); !st.ok()) return st;
    }
    v1::AgentStep call;
    call.set_kind(v1::AGENT_STEP_KIND_TOOL_CALL);
    call.set_tool_name(turn_out->tool);
    call.set_tool_call_id(absl::StrCat("call_", step_));
    call.set_arguments_json(turn_out->arguments_json);
    if (auto st = Emit(std::move(call)); !st.ok()) return st;
    Tool* tool = nullptr;
    for (const auto& t : plan.tools)
      if (t->spec().name() == turn_out->tool) tool = t.get();
    if (auto st = CallTool(*tool, turn_out->arguments_json, plan.tool_timeout); !st.ok()) return st;
  }
  if (cancelled()) return EndCancelled();
  return End(absl::OkStatus(), absl::StrCat("max_steps (", max_steps, ") reached without a final answer"));
}

absl::Status RunLoop::CallTool(Tool& tool, const std::string& arguments_json, absl::Duration timeout) {
  const std::string name = tool.spec().name();
  const std::string call_id = absl::StrCat("call_", step_);
  const absl::Time start = absl::Now();
  ToolContext ctx{std::min(deadline_, start + timeout), env_.cancel, call_id, env_.request_id};
  auto out = tool.Call(arguments_json, ctx);
  // A result past the deadline counts as a timeout: the loop promised the
  // model (and the client) that a call takes at most the timeout.
  if (out.ok() && absl::Now() > ctx.deadline) out = absl::DeadlineExceededError("late");
  v1::AgentStep result;
  result.set_kind(v1::AGENT_STEP_KIND_TOOL_RESULT);
  result.set_tool_name(name);
  result.set_tool_call_id(call_id);
  if (out.ok()) {
    result.set_text(TruncateUtf8(*out, options_.max_tool_output_bytes));
  } else {
    result.set_tool_error(true);
    if (absl::IsDeadlineExceeded(out.status())) {
      result.set_text(absl::StrCat("timed out after ", absl::ToInt64Milliseconds(ctx.deadline - start), " ms"));
    } else if (absl::IsCancelled(out.status()) && cancelled()) {
      result.set_text("cancelled");
    } else {
      result.set_text(TruncateUtf8(std::string(out.status().message()), options_.max_tool_output_bytes));
    }
  }
  spdlog::debug("event=agent_tool session={} tool={} call={} error={} ms={}", session_id_, name, call_id,
               result.tool_error(), absl::ToInt64Milliseconds(absl::Now() - start));
  v1::ChatMessage observation;
  observation.set_role("tool");
  observation.set_name(name);
  observation.set_tool_call_id(call_id);
  observation.set_content(result.tool_error() ? absl::StrCat("error: ", result.text()) : result.text());
  if (auto st = Emit(std::move(result)); !st.ok()) return st;
  return Append(std::move(observation));
}

}  // namespace

Agent::Agent(AgentOptions options, LlmBackend& backend, AgentStore& store, ToolRegistry& registry,
             Retriever* retriever)
    : options_(std::move(options)), backend_(backend), store_(store), registry_(registry), retriever_(retriever) {}

namespace {

// Checks the request and picks its tools and limits (INVALID_ARGUMENT naming
// the field); the session is resolved by the caller.
absl::Status ResolvePlan(const AgentOptions& options, const ToolRegistry& registry, Retriever* retriever,
                         const v1::AgentRunRequest& req, Plan& plan) {
  if (req.input().empty()) return absl::InvalidArgumentError("input is empty");
  if (req.input().size() > options.max_input_bytes)
    return absl::InvalidArgumentError(absl::StrCat("input is longer than ", options.max_input_bytes, " bytes"));
  if (req.system_prompt().size() > options.max_input_bytes)
    return absl::InvalidArgumentError(
        absl::StrCat("system_prompt is longer than ", options.max_input_bytes, " bytes"));
  if (!req.sampling().grammar().empty() || !req.sampling().json_schema().empty())
    return absl::InvalidArgumentError(
        "sampling.grammar and sampling.json_schema must be empty: the agent constrains each turn itself");
  if (req.tools_size() > static_cast<int>(options.max_tools))
    return absl::InvalidArgumentError(absl::StrCat("more than ", options.max_tools, " tools"));

  auto steps = Limit(req.limits().max_steps(), options.default_max_steps, options.max_steps_cap, "max_steps");
  if (!steps.ok()) return steps.status();
  auto tokens = Limit(req.limits().max_tokens(), options.default_max_tokens, options.max_tokens_cap, "max_tokens");
  if (!tokens.ok()) return tokens.status();
  auto wall = LimitMs(req.limits().max_wall_ms(), options.default_max_wall, options.max_wall_cap, "max_wall_ms");
  if (!wall.ok()) return wall.status();
  auto tool_timeout = LimitMs(req.limits().tool_timeout_ms(), options.default_tool_timeout,
                              options.tool_timeout_cap, "tool_timeout_ms");
  if (!tool_timeout.ok()) return tool_timeout.status();
  plan.max_steps = *steps;
  plan.max_tokens = *tokens;
  plan.max_wall = *wall;
  plan.tool_timeout = *tool_timeout;

  for (const auto& name : req.tools()) {
    for (const auto& t : plan.tools)
      if (t->spec().name() == name) return absl::InvalidArgumentError(absl::StrCat("tool '", name, "' is listed twice"));
    std::shared_ptr<Tool> tool;
    if (name == kCalculatorTool) {
      tool = MakeCalculatorTool();
    } else if (name == kCurrentTimeTool) {
      tool = MakeCurrentTimeTool();
    } else if (name == kRagSearchTool) {
      std::string collection = req.rag_collection().empty() ? options.default_rag_collection : req.rag_collection();
      if (!retriever) return absl::InvalidArgumentError("rag_search is not available: the service has no rag-svc");
      if (collection.empty())
        return absl::InvalidArgumentError("rag_search needs rag_collection (the request names none, nor does the service)");
      tool = MakeRagSearchTool(*retriever, collection);
    } else {
      tool = registry.Find(name);
      if (!tool) {
        std::vector<std::string> known = {kCalculatorTool, kCurrentTimeTool, kRagSearchTool};
        for (const auto& s : registry.List()) known.push_back(s.name());
        return absl::InvalidArgumentError(
            absl::StrCat("unknown tool '", name, "' (known: ", absl::StrJoin(known, ", "), ")"));
      }
    }
    plan.specs.push_back(tool->spec());
    plan.tools.push_back(std::move(tool));
  }

  const std::string& choice = req.tool_choice();
  if (choice == "none") {
    plan.none = true;
  } else if (choice == "required") {
    if (plan.tools.empty()) return absl::InvalidArgumentError("tool_choice 'required' needs at least one tool");
    plan.required = true;
  } else if (!choice.empty() && choice != "auto") {
    bool listed = false;
    for (const auto& t : plan.tools) listed = listed || t->spec().name() == choice;
    if (!listed)
      return absl::InvalidArgumentError(
          absl::StrCat("tool_choice '", choice, "' is not auto, none, required, or one of the run's tools"));
    plan.forced_tool = choice;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Agent::Run(const v1::AgentRunRequest& req, const RunEnv& env, const StepSink& sink) {
  Plan plan;
  if (auto st = ResolvePlan(options_, registry_, retriever_, req, plan); !st.ok()) return st;

  // One run per session at a time, claimed before its history is read.
  auto claim = [this](const std::string& id) -> absl::Status {
    std::lock_guard lock(mu_);
    if (!running_.insert(id).second)
      return absl::FailedPreconditionError(absl::StrCat("session '", id, "' has a run in progress"));
    return absl::OkStatus();
  };
  struct Release {
    Agent* agent;
    std::string id;
    ~Release() {
      if (id.empty()) return;
      std::lock_guard lock(agent->mu_);
      agent->running_.erase(id);
    }
  } release{this, ""};

  const bool resume = !req.session_id().empty();
  if (resume) {
    if (auto st = claim(req.session_id()); !st.ok()) return st;
    release.id = req.session_id();
    auto s = store_.GetSession(req.session_id(), /*with_history=*/true);
    if (!s.ok()) return s.status();
    plan.session = std::move(*s);
  }
  plan.model = !req.model().empty()                ? req.model()
               : !plan.session.model().empty()     ? plan.session.model()
                                                   : options_.default_model;
  if (plan.model.empty()) return absl::InvalidArgumentError("model is empty and the service has no default model");
  plan.system_prompt = !req.system_prompt().empty() ? req.system_prompt() : plan.session.system_prompt();
  if (resume) {
    if (auto st = store_.UpdateSession(req.session_id(), plan.model, plan.system_prompt); !st.ok()) return st;
  } else {
    auto s = store_.CreateSession(plan.model, plan.system_prompt);
    if (!s.ok()) return s.status();
    plan.session = std::move(*s);
    if (auto st = claim(plan.session.session_id()); !st.ok()) return st;
    release.id = plan.session.session_id();
  }
  const std::string id = plan.session.session_id();
  int32_t first_step = 1;
  for (const auto& s : plan.session.steps()) first_step = std::max(first_step, s.step() + 1);
  std::vector<v1::ChatMessage> history(plan.session.messages().begin(), plan.session.messages().end());

  absl::Time start = absl::Now();
  spdlog::info("event=agent_run_start session={} request_id={} model={} tools={} first_step={}", id,
               env.request_id, plan.model, req.tools_size(), first_step);
  RunLoop loop(options_, backend_, store_, env, sink, req, id);
  absl::Status st = loop.Go(plan, std::move(history), first_step);
  spdlog::info("event=agent_run_end session={} request_id={} status={} turns={} prompt_tokens={} "
               "completion_tokens={} ms={}",
               id, env.request_id, absl::StatusCodeToString(st.code()), loop.steps_done(),
               loop.usage().prompt_tokens(), loop.usage().completion_tokens(),
               absl::ToInt64Milliseconds(absl::Now() - start));
  return st;
}

}  // namespace llmesh::agent
