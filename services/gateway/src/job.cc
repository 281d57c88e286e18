#include "llmesh/gateway/job.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace llmesh::gateway {
namespace {

absl::Status Bad(const std::string& msg) { return absl::InvalidArgumentError(msg); }

absl::Status CheckFinite(const char* name, bool has, float v) {
  if (has && !std::isfinite(v)) return Bad(absl::StrCat(name, " must be a finite number"));
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateJob(const GenerateJob& job, const JobLimits& limits) {
  switch (job.input) {
    case GenerateJob::Input::kText:
      if (job.prompt.empty()) return Bad("prompt is empty");
      break;
    case GenerateJob::Input::kTokenIds:
      if (job.prompt_ids.empty()) return Bad("prompt is empty");
      for (size_t i = 0; i < job.prompt_ids.size(); ++i)
        if (job.prompt_ids[i] < 0)
          return Bad(absl::StrCat("prompt token [", i, "] = ", job.prompt_ids[i], " is not a valid token id"));
      break;
    case GenerateJob::Input::kChat:
      if (job.messages.empty()) return Bad("messages is empty");
      if (static_cast<int>(job.messages.size()) > limits.max_messages)
        return Bad(absl::StrCat("too many messages (at most ", limits.max_messages, ")"));
      for (size_t i = 0; i < job.messages.size(); ++i) {
        const std::string& role = job.messages[i].role();
        if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer")
          return Bad(absl::StrCat("messages[", i, "].role must be system, user, assistant or tool; got '", role, "'"));
      }
      break;
  }
  if (job.retrieval) {
    const RetrievalSpec& r = *job.retrieval;
    if (job.input != GenerateJob::Input::kChat) return Bad("retrieval needs chat messages");
    if (r.collection.empty()) return Bad("collection is required");
    if (r.top_k < 1 || r.top_k > 100) return Bad(absl::StrCat("top_k must be in 1..100; got ", r.top_k));
    if (RetrievalQueryOf(job).empty()) return Bad("retrieval needs a non-empty user message to search with");
    for (size_t i = 0; i < r.filters.size(); ++i) {
      if (r.filters[i].key().empty()) return Bad(absl::StrCat("filters[", i, "].key is empty"));
      if (r.filters[i].values().empty()) return Bad(absl::StrCat("filters[", i, "] has no values"));
    }
  }
  if (!job.tools.empty() && job.input != GenerateJob::Input::kChat) return Bad("tools need chat messages");
  if (job.n < 1 || job.n > 16) return Bad(absl::StrCat("n must be in 1..16; got ", job.n));
  if (job.top_logprobs < 0 || job.top_logprobs > 20)
    return Bad(absl::StrCat("top_logprobs must be in 0..20; got ", job.top_logprobs));
  const auto& st = job.stopping;
  if (st.max_tokens() < 0) return Bad(absl::StrCat("max_tokens must be >= 0; got ", st.max_tokens()));
  if (st.max_tokens() > limits.max_tokens_limit)
    return Bad(absl::StrCat("max_tokens must be at most ", limits.max_tokens_limit, "; got ", st.max_tokens()));
  if (st.stop_size() > limits.max_stop_strings)
    return Bad(absl::StrCat("at most ", limits.max_stop_strings, " stop strings"));
  for (int i = 0; i < st.stop_size(); ++i) {
    if (st.stop(i).empty()) return Bad(absl::StrCat("stop[", i, "] is empty"));
    if (static_cast<int>(st.stop(i).size()) > limits.max_stop_bytes)
      return Bad(absl::StrCat("stop[", i, "] is longer than ", limits.max_stop_bytes, " bytes"));
  }
  for (int i = 0; i < st.stop_token_ids_size(); ++i)
    if (st.stop_token_ids(i) < 0) return Bad(absl::StrCat("stop_token_ids[", i, "] is not a valid token id"));
  const auto& s = job.sampling;
  for (auto check : {CheckFinite("temperature", s.has_temperature(), s.temperature()),
                     CheckFinite("top_p", s.has_top_p(), s.top_p()), CheckFinite("min_p", s.has_min_p(), s.min_p()),
                     CheckFinite("typical_p", s.has_typical_p(), s.typical_p()),
                     CheckFinite("repetition_penalty", s.has_repetition_penalty(), s.repetition_penalty()),
                     CheckFinite("frequency_penalty", s.has_frequency_penalty(), s.frequency_penalty()),
                     CheckFinite("presence_penalty", s.has_presence_penalty(), s.presence_penalty()),
                     CheckFinite("mirostat_tau", s.has_mirostat_tau(), s.mirostat_tau()),
                     CheckFinite("mirostat_eta", s.has_mirostat_eta(), s.mirostat_eta())}) {
    if (!check.ok()) return check;
  }
  if (s.has_temperature() && (s.temperature() < 0 || s.temperature() > 100))
    return Bad("temperature must be in [0, 100]");
  for (const auto& [id, bias] : s.logit_bias()) {
    if (id < 0) return Bad(absl::StrCat("logit_bias token id ", id, " is not a valid token id"));
    if (!std::isfinite(bias)) return Bad("logit_bias values must be finite");
  }
  return absl::OkStatus();
}

GenerateJob JobFromProto(const v1::GatewayGenerateRequest& req) {
  GenerateJob job;
  job.input = GenerateJob::Input::kText;
  job.model = req.model();
  job.prompt = req.prompt();
  job.sampling = req.sampling();
  job.stopping = req.stopping();
  job.logprobs = req.logprobs();
  job.top_logprobs = req.top_logprobs();
  job.n = req.n() == 0 ? 1 : req.n();
  job.user = req.user();
  return job;
}

GenerateJob JobFromProto(const v1::ChatRequest& req) {
  GenerateJob job;
  job.input = GenerateJob::Input::kChat;
  job.model = req.model();
  job.messages.assign(req.messages().begin(), req.messages().end());
  job.template_name = req.template_name();
  job.sampling = req.sampling();
  job.stopping = req.stopping();
  job.logprobs = req.logprobs();
  job.top_logprobs = req.top_logprobs();
  job.n = req.n() == 0 ? 1 : req.n();
  job.user = req.user();
  job.tools.assign(req.tools().begin(), req.tools().end());
  job.tool_choice = req.tool_choice();
  return job;
}

GenerateJob JobFromProto(const v1::RagChatRequest& req) {
  GenerateJob job = JobFromProto(req.chat());
  RetrievalSpec r;
  r.collection = req.collection();
  r.top_k = req.top_k() == 0 ? 4 : req.top_k();
  r.mode = req.mode();
  r.filters.assign(req.filters().begin(), req.filters().end());
  job.retrieval = std::move(r);
  return job;
}

void AddToSystemMessage(std::vector<v1::ChatMessage>* messages, const std::string& text) {
  if (!messages->empty() && (*messages)[0].role() == "system") {
    v1::ChatMessage& m = (*messages)[0];
    m.set_content(m.content().empty() ? text : absl::StrCat(m.content(), "\n\n", text));
    return;
  }
  v1::ChatMessage m;
  m.set_role("system");
  m.set_content(text);
  messages->insert(messages->begin(), std::move(m));
}

std::string RetrievalQueryOf(const GenerateJob& job) {
  for (auto it = job.messages.rbegin(); it != job.messages.rend(); ++it)
    if (it->role() == "user") return it->content();
  return "";
}

}  // namespace llmesh::gateway
