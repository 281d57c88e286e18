#include "llmesh/agent/prompt_budget.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "llmesh/agent/prompt.h"
#include "llmesh/agent/tool.h"

namespace llmesh::agent {
namespace {

// Observations are first cut to no less than this, which still says
// something; only when that is not enough, down to the bone.
constexpr size_t kUsefulObservation = 256;
constexpr size_t kShortestObservation = 32;
constexpr char kCutMarker[] = " [truncated]";  // what TruncateUtf8 appends

// Ranges of history that can go, in the order they go: earlier runs'
// messages one by one, then this run's steps (a model turn and what
// follows it up to the next one), all but the latest.
std::vector<std::pair<size_t, size_t>> DroppableUnits(const std::vector<v1::ChatMessage>& history, size_t task) {
  std::vector<std::pair<size_t, size_t>> units;
  for (size_t i = 0; i < task; ++i) units.push_back({i, i + 1});
  std::vector<std::pair<size_t, size_t>> steps;
  for (size_t i = task + 1; i < history.size(); ++i) {
    if (history[i].role() == "assistant" || steps.empty()) steps.push_back({i, i + 1});
    else steps.back().second = i + 1;
  }
  if (!steps.empty()) steps.pop_back();  // the latest step stays
  units.insert(units.end(), steps.begin(), steps.end());
  return units;
}

// History without its first `n` droppable units; the task notes the steps left out.
std::vector<v1::ChatMessage> Without(const std::vector<v1::ChatMessage>& history, size_t task,
                                     const std::vector<std::pair<size_t, size_t>>& units, size_t n) {
  const size_t earlier = std::min(n, task);  // earlier runs' messages dropped
  const size_t steps_from = n > task ? units[n - 1].second : task + 1;
  std::vector<v1::ChatMessage> out(history.begin() + static_cast<std::ptrdiff_t>(earlier),
                                   history.begin() + static_cast<std::ptrdiff_t>(task + 1));
  if (steps_from > task + 1) {
    size_t steps = 0;
    std::vector<std::string> tools;
    for (size_t i = task + 1; i < steps_from; ++i) {
      if (history[i].role() == "assistant") ++steps;
      if (history[i].role() == "tool") tools.push_back(history[i].name());
    }
    absl::StrAppend(out.back().mutable_content(), "\n\n(", steps, " earlier step", steps == 1 ? "" : "s",
                    " left out to fit the context", tools.empty() ? "" : "; tools called: ",
                    absl::StrJoin(tools, ", "), ")");
  }
  out.insert(out.end(), history.begin() + static_cast<std::ptrdiff_t>(steps_from), history.end());
  return out;
}

}  // namespace

absl::StatusOr<FittedPrompt> FitPrompt(const std::string& system_message, const std::vector<v1::ChatMessage>& history,
                                       size_t task, size_t max_history, int32_t budget, const PromptCounter& count) {
  const auto units = DroppableUnits(history, task);
  FittedPrompt fit;
  std::vector<v1::ChatMessage> kept;
  for (size_t n = 0; n <= units.size(); ++n) {
    kept = Without(history, task, units, n);
    fit.messages = BuildPrompt(system_message, kept, max_history);
    auto tokens = count(fit.messages);
    if (!tokens.ok()) return tokens.status();
    fit.tokens = *tokens;
    fit.dropped = history.size() - kept.size();
    if (fit.tokens <= budget) return fit;
  }
  // Only the task and the latest step are left: cut its observations to a
  // useful size, then leave out the model's call (its observation names the
  // tool), then cut them to the bone.
  auto recount = [&]() -> absl::Status {
    fit.messages = BuildPrompt(system_message, kept, max_history);
    auto tokens = count(fit.messages);
    if (!tokens.ok()) return tokens.status();
    fit.tokens = *tokens;
    return absl::OkStatus();
  };
  for (size_t floor : {kUsefulObservation, kShortestObservation}) {
    while (true) {
      v1::ChatMessage* longest = nullptr;
      size_t longest_size = floor;  // what is left of it without the marker
      for (auto& m : kept) {
        if (m.role() != "tool") continue;
        size_t size = m.content().size() - (absl::EndsWith(m.content(), kCutMarker) ? sizeof(kCutMarker) - 1 : 0);
        if (size > longest_size) {
          longest = &m;
          longest_size = size;
        }
      }
      if (!longest) break;
      longest->set_content(TruncateUtf8(longest->content(), std::max(floor, longest_size / 2)));
      ++fit.observations_cut;
      if (auto st = recount(); !st.ok()) return st;
      if (fit.tokens <= budget) return fit;
    }
    if (floor != kUsefulObservation) break;
    const size_t before = kept.size();
    kept.erase(std::remove_if(kept.begin() + 1, kept.end(),
                              [](const v1::ChatMessage& m) { return m.role() == "assistant"; }),
               kept.end());
    if (kept.size() == before) continue;
    fit.dropped += before - kept.size();
    if (auto st = recount(); !st.ok()) return st;
    if (fit.tokens <= budget) return fit;
  }
  return absl::OutOfRangeError(absl::StrCat("the prompt needs ", fit.tokens, " tokens even with only the task and ",
                                            "the latest observation, and ", std::max(budget, 0), " are left for it"));
}

}  // namespace llmesh::agent
