#include "llmesh/gateway/openai_json.h"

#include <cmath>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "json_fields.h"
#include "llmesh/gateway/openai_tools.h"

namespace llmesh::gateway {
namespace {

using json = nlohmann::json;
// Request bodies: ordered, since the schemas in them are passed on with their
// properties in declared order (openai_tools.h).
using OJson = nlohmann::ordered_json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Field access that never throws: every helper checks the type first.
class Fields {
 public:
  Fields(const OJson& obj, std::string* param) : obj_(obj), param_(param) {}

  // nullptr when absent or null.
  const OJson* Get(const char* name) const { return json_fields::Get(obj_, name); }
  absl::Status Fail(const char* name, const std::string& msg) const { return json_fields::Fail(param_, name, msg); }
  absl::Status String(const char* name, std::string* out) const { return json_fields::String(obj_, name, out, param_); }
  absl::Status Bool(const char* name, bool* out) const {
    const OJson* v = Get(name);
    if (!v) return absl::OkStatus();
    if (!v->is_boolean()) return Fail(name, absl::StrCat("'", name, "' must be a boolean"));
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  // A finite number; `set` tells whether it was given.
  absl::Status Number(const char* name, double* out, bool* set) const {
    const OJson* v = Get(name);
    if (set) *set = false;
    if (!v) return absl::OkStatus();
    if (!v->is_number()) return Fail(name, absl::StrCat("'", name, "' must be a number"));
    double d = v->get<double>();
    if (!std::isfinite(d)) return Fail(name, absl::StrCat("'", name, "' must be a finite number"));
    *out = d;
    if (set) *set = true;
    return absl::OkStatus();
  }
  absl::Status Int(const char* name, int64_t lo, int64_t hi, int64_t* out, bool* set) const {
    const OJson* v = Get(name);
    if (set) *set = false;
    if (!v) return absl::OkStatus();
    return IntValue(name, *v, lo, hi, out, set);
  }
  absl::Status IntValue(const char* name, const OJson& v, int64_t lo, int64_t hi, int64_t* out, bool* set) const {
    int64_t x = 0;
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(hi)) return Fail(name, absl::StrCat("'", name, "' must be in [", lo, ", ", hi, "]"));
      x = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      x = v.get<int64_t>();
    } else if (v.is_number_float()) {
      double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d)) return Fail(name, absl::StrCat("'", name, "' must be an integer"));
      if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
        return Fail(name, absl::StrCat("'", name, "' must be in [", lo, ", ", hi, "]"));
      x = static_cast<int64_t>(d);
    } else {
      return Fail(name, absl::StrCat("'", name, "' must be an integer"));
    }
    if (x < lo || x > hi) return Fail(name, absl::StrCat("'", name, "' must be in [", lo, ", ", hi, "]"));
    *out = x;
    if (set) *set = true;
    return absl::OkStatus();
  }

 private:
  const OJson& obj_;
  std::string* param_;
};

#define RETURN_IF_ERROR(expr)            \
  do {                                   \
    absl::Status _st = (expr);           \
    if (!_st.ok()) return _st;           \
  } while (0)

// The engine's sampling parameters, under OpenAI's and llama.cpp's names.
absl::Status ParseSampling(const Fields& f, v1::SamplingParams* sampling) {
  double d = 0;
  bool set = false;
  int64_t i = 0;
  auto& s = *sampling;
  RETURN_IF_ERROR(f.Number("temperature", &d, &set));
  if (set) {
    if (d < 0 || d > 100) return f.Fail("temperature", "'temperature' must be in [0, 100]");
    s.set_temperature(static_cast<float>(d));
  }
  RETURN_IF_ERROR(f.Number("top_p", &d, &set));
  if (set) {
    if (d <= 0 || d > 1) return f.Fail("top_p", "'top_p' must be in (0, 1]");
    s.set_top_p(static_cast<float>(d));
  }
  RETURN_IF_ERROR(f.Number("min_p", &d, &set));
  if (set) s.set_min_p(static_cast<float>(d));
  RETURN_IF_ERROR(f.Number("typical_p", &d, &set));
  if (set) s.set_typical_p(static_cast<float>(d));
  RETURN_IF_ERROR(f.Number("repetition_penalty", &d, &set));
  if (set) s.set_repetition_penalty(static_cast<float>(d));
  RETURN_IF_ERROR(f.Number("frequency_penalty", &d, &set));
  if (set) {
    if (d < -2 || d > 2) return f.Fail("frequency_penalty", "'frequency_penalty' must be in [-2, 2]");
    s.set_frequency_penalty(static_cast<float>(d));
  }
  RETURN_IF_ERROR(f.Number("presence_penalty", &d, &set));
  if (set) {
    if (d < -2 || d > 2) return f.Fail("presence_penalty", "'presence_penalty' must be in [-2, 2]");
    s.set_presence_penalty(static_cast<float>(d));
  }
  RETURN_IF_ERROR(f.Int("top_k", 0, 1 << 30, &i, &set));
  if (set) s.set_top_k(static_cast<int32_t>(i));
  RETURN_IF_ERROR(f.Int("penalty_last_n", -1, 1 << 30, &i, &set));
  if (set) s.set_penalty_last_n(static_cast<int32_t>(i));
  RETURN_IF_ERROR(f.Int("mirostat", 0, 2, &i, &set));
  if (set) s.set_mirostat(static_cast<int32_t>(i));
  RETURN_IF_ERROR(f.Number("mirostat_tau", &d, &set));
  if (set) s.set_mirostat_tau(static_cast<float>(d));
  RETURN_IF_ERROR(f.Number("mirostat_eta", &d, &set));
  if (set) s.set_mirostat_eta(static_cast<float>(d));
  RETURN_IF_ERROR(f.Int("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &i, &set));
  if (set) s.set_seed(static_cast<uint64_t>(i));
  std::string grammar;
  RETURN_IF_ERROR(f.String("grammar", &grammar));
  s.set_grammar(grammar);
  if (const OJson* lb = f.Get("logit_bias")) {
    if (!lb->is_object()) return f.Fail("logit_bias", "'logit_bias' must be an object of token id -> bias");
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      int64_t id = 0;
      const std::string& key = it.key();
      char* end = nullptr;
      errno = 0;
      long long v = std::strtoll(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || errno != 0 || v < 0 || v > std::numeric_limits<int32_t>::max())
        return f.Fail("logit_bias", absl::StrCat("'logit_bias' key '", key, "' is not a token id"));
      id = v;
      if (!it->is_number() || !std::isfinite(it->get<double>()))
        return f.Fail("logit_bias", "'logit_bias' values must be numbers");
      double bias = it->get<double>();
      if (bias < -100 || bias > 100) return f.Fail("logit_bias", "'logit_bias' values must be in [-100, 100]");
      (*s.mutable_logit_bias())[static_cast<int32_t>(id)] = static_cast<float>(bias);
    }
  }
  return absl::OkStatus();
}

// Sampling, stopping and logprob fields shared by both generation routes.
absl::Status ParseCommon(const Fields& f, GenerateJob* job, bool chat) {
  int64_t i = 0;
  bool set = false;
  RETURN_IF_ERROR(ParseSampling(f, &job->sampling));
  auto& st = job->stopping;
  bool has_max = false;
  RETURN_IF_ERROR(f.Int("max_tokens", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &i,
                        &has_max));
  if (!has_max && chat) RETURN_IF_ERROR(f.Int("max_completion_tokens", std::numeric_limits<int64_t>::min(),
                                              std::numeric_limits<int64_t>::max(), &i, &has_max));
  if (has_max) {
    const char* name = f.Get("max_tokens") ? "max_tokens" : "max_completion_tokens";
    if (i < 1) return f.Fail(name, absl::StrCat("'", name, "' must be at least 1; got ", i));
    if (i > (1 << 20)) return f.Fail(name, absl::StrCat("'", name, "' is too large: ", i));
    st.set_max_tokens(static_cast<int32_t>(i));
  } else if (!chat) {
    st.set_max_tokens(16);  // OpenAI's default for /v1/completions
  }
  if (const OJson* stop = f.Get("stop")) {
    if (stop->is_string()) {
      if (!stop->get_ref<const std::string&>().empty()) st.add_stop(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 16) return f.Fail("stop", "'stop' holds at most 16 strings");
      for (const auto& e : *stop) {
        if (!e.is_string()) return f.Fail("stop", "'stop' must be a string or an array of strings");
        if (!e.get_ref<const std::string&>().empty()) st.add_stop(e.get<std::string>());
      }
    } else {
      return f.Fail("stop", "'stop' must be a string or an array of strings");
    }
  }
  if (const OJson* ids = f.Get("stop_token_ids")) {
    if (!ids->is_array()) return f.Fail("stop_token_ids", "'stop_token_ids' must be an array of integers");
    for (const auto& e : *ids) {
      int64_t id = 0;
      RETURN_IF_ERROR(f.IntValue("stop_token_ids", e, 0, std::numeric_limits<int32_t>::max(), &id, nullptr));
      st.add_stop_token_ids(static_cast<int32_t>(id));
    }
  }
  bool ignore_eos = false;
  RETURN_IF_ERROR(f.Bool("ignore_eos", &ignore_eos));
  st.set_ignore_eos(ignore_eos);

  RETURN_IF_ERROR(f.Int("n", 1, 16, &i, &set));
  job->n = set ? static_cast<int32_t>(i) : 1;
  RETURN_IF_ERROR(f.String("user", &job->user));
  return absl::OkStatus();
}

absl::Status ParseStream(const Fields& f, OpenAiRequest* out) {
  RETURN_IF_ERROR(f.Bool("stream", &out->stream));
  if (const OJson* so = f.Get("stream_options")) {
    if (!so->is_object()) return f.Fail("stream_options", "'stream_options' must be an object");
    Fields sf(*so, nullptr);
    bool inc = false;
    if (!sf.Bool("include_usage", &inc).ok())
      return f.Fail("stream_options", "'stream_options.include_usage' must be a boolean");
    out->include_usage = inc;
  }
  return absl::OkStatus();
}

absl::Status ParseModel(const Fields& f, const std::string& default_model, std::string* model) {
  RETURN_IF_ERROR(f.String("model", model));
  if (model->empty()) *model = default_model;
  if (model->empty()) return f.Fail("model", "'model' is required");
  return absl::OkStatus();
}

// Token id list: every element an integer id.
absl::Status TokenList(const Fields& f, const char* name, const OJson& arr, std::vector<int32_t>* out) {
  for (const auto& e : arr) {
    int64_t id = 0;
    if (!e.is_number_integer() && !e.is_number_unsigned())
      return f.Fail(name, absl::StrCat("'", name, "' token ids must be integers"));
    RETURN_IF_ERROR(f.IntValue(name, e, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), &id,
                               nullptr));
    out->push_back(static_cast<int32_t>(id));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseSamplingFields(const OJson& body, v1::SamplingParams* sampling, std::string* param) {
  return ParseSampling(Fields(body, param), sampling);
}

absl::StatusOr<OpenAiRequest> ParseChatCompletionRequest(const std::string& body, const std::string& default_model,
                                                         std::string* param) {
  auto j = json_fields::ParseBody<OJson>(body, param);
  if (!j.ok()) return j.status();
  Fields f(*j, param);
  OpenAiRequest out;
  out.chat = true;
  GenerateJob& job = out.job;
  job.input = GenerateJob::Input::kChat;
  RETURN_IF_ERROR(ParseModel(f, default_model, &job.model));
  const OJson* msgs = f.Get("messages");
  if (!msgs) return f.Fail("messages", "'messages' is required");
  if (!msgs->is_array()) return f.Fail("messages", "'messages' must be an array");
  if (msgs->empty()) return f.Fail("messages", "'messages' must not be empty");
  for (size_t k = 0; k < msgs->size(); ++k) {
    const OJson& m = (*msgs)[k];
    if (!m.is_object()) return f.Fail("messages", absl::StrCat("messages[", k, "] must be an object"));
    Fields mf(m, nullptr);
    v1::ChatMessage msg;
    std::string role, name, tool_call_id;
    if (!mf.String("role", &role).ok() || role.empty())
      return f.Fail("messages", absl::StrCat("messages[", k, "].role must be a string"));
    if (role == "developer") role = "system";
    msg.set_role(role);
    if (const OJson* c = mf.Get("content")) {
      if (c->is_string()) {
        msg.set_content(c->get<std::string>());
      } else if (c->is_array()) {
        std::string text;
        for (const auto& part : *c) {
          if (!part.is_object()) return f.Fail("messages", absl::StrCat("messages[", k, "].content parts must be objects"));
          Fields pf(part, nullptr);
          std::string type, t;
          if (!pf.String("type", &type).ok() || !pf.String("text", &t).ok())
            return f.Fail("messages", absl::StrCat("messages[", k, "].content part has a bad type or text"));
          if (type != "text")
            return f.Fail("messages", absl::StrCat("messages[", k, "]: content parts of type '", type,
                                                   "' are not supported (text only)"));
          text += t;
        }
        msg.set_content(text);
      } else {
        return f.Fail("messages", absl::StrCat("messages[", k, "].content must be a string or an array of parts"));
      }
    }
    if (!mf.String("name", &name).ok()) return f.Fail("messages", absl::StrCat("messages[", k, "].name must be a string"));
    if (!mf.String("tool_call_id", &tool_call_id).ok())
      return f.Fail("messages", absl::StrCat("messages[", k, "].tool_call_id must be a string"));
    msg.set_name(name);
    msg.set_tool_call_id(tool_call_id);
    if (const OJson* calls = mf.Get("tool_calls"); calls && role == "assistant") {
      // The history keeps a call as the text the model wrote for it.
      auto text = ToolCallsAsText(*calls);
      if (!text.ok()) return f.Fail("messages", absl::StrCat("messages[", k, "]: ", text.status().message()));
      msg.set_content(msg.content().empty() ? *text : absl::StrCat(msg.content(), "\n", *text));
    }
    job.messages.push_back(std::move(msg));
  }
  RETURN_IF_ERROR(ParseCommon(f, &job, /*chat=*/true));
  RETURN_IF_ERROR(ParseStream(f, &out));
  RETURN_IF_ERROR(f.Bool("logprobs", &job.logprobs));
  int64_t i = 0;
  bool set = false;
  RETURN_IF_ERROR(f.Int("top_logprobs", 0, 20, &i, &set));
  if (set) {
    if (!job.logprobs && i > 0) return f.Fail("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    job.top_logprobs = static_cast<int32_t>(i);
  }
  std::string tmpl;
  RETURN_IF_ERROR(f.String("chat_template", &tmpl));
  job.template_name = tmpl;
  RETURN_IF_ERROR(ParseConstraintFields(*j, /*chat=*/true, &job, param));
  return out;
}

absl::StatusOr<OpenAiRequest> ParseCompletionRequest(const std::string& body, const std::string& default_model,
                                                     std::string* param) {
  auto j = json_fields::ParseBody<OJson>(body, param);
  if (!j.ok()) return j.status();
  Fields f(*j, param);
  OpenAiRequest out;
  GenerateJob& job = out.job;
  RETURN_IF_ERROR(ParseModel(f, default_model, &job.model));
  const OJson* p = f.Get("prompt");
  if (!p) return f.Fail("prompt", "'prompt' is required");
  if (p->is_string()) {
    job.input = GenerateJob::Input::kText;
    job.prompt = p->get<std::string>();
  } else if (p->is_array()) {
    if (p->empty()) return f.Fail("prompt", "'prompt' must not be empty");
    const OJson& first = (*p)[0];
    if (first.is_string() || first.is_array()) {
      if (p->size() != 1)
        return f.Fail("prompt", "batched prompts are not supported: send one prompt per request (or use n)");
      if (first.is_string()) {
        job.input = GenerateJob::Input::kText;
        job.prompt = first.get<std::string>();
      } else {
        job.input = GenerateJob::Input::kTokenIds;
        RETURN_IF_ERROR(TokenList(f, "prompt", first, &job.prompt_ids));
      }
    } else {
      job.input = GenerateJob::Input::kTokenIds;
      RETURN_IF_ERROR(TokenList(f, "prompt", *p, &job.prompt_ids));
    }
  } else {
    return f.Fail("prompt", "'prompt' must be a string, an array of token ids, or an array of one of those");
  }
  if ((job.input == GenerateJob::Input::kText && job.prompt.empty()) ||
      (job.input == GenerateJob::Input::kTokenIds && job.prompt_ids.empty()))
    return f.Fail("prompt", "'prompt' is empty");
  RETURN_IF_ERROR(ParseCommon(f, &job, /*chat=*/false));
  RETURN_IF_ERROR(ParseStream(f, &out));
  bool echo = false;
  RETURN_IF_ERROR(f.Bool("echo", &echo));
  if (echo) return f.Fail("echo", "'echo' is not supported");
  std::string suffix;
  RETURN_IF_ERROR(f.String("suffix", &suffix));
  if (!suffix.empty()) return f.Fail("suffix", "'suffix' is not supported");
  int64_t i = 0;
  bool set = false;
  RETURN_IF_ERROR(f.Int("logprobs", 0, 20, &i, &set));
  if (set) {
    job.logprobs = true;
    job.top_logprobs = static_cast<int32_t>(i);
  }
  RETURN_IF_ERROR(f.Int("best_of", 1, 16, &i, &set));
  if (set && i != job.n) return f.Fail("best_of", "'best_of' other than n is not supported");
  RETURN_IF_ERROR(ParseConstraintFields(*j, /*chat=*/false, &job, param));
  return out;
}

absl::StatusOr<EmbeddingsRequest> ParseEmbeddingsRequest(const std::string& body, const std::string& default_model,
                                                         std::string* param) {
  auto j = json_fields::ParseBody<OJson>(body, param);
  if (!j.ok()) return j.status();
  Fields f(*j, param);
  EmbeddingsRequest out;
  RETURN_IF_ERROR(ParseModel(f, default_model, &out.model));
  const OJson* in = f.Get("input");
  if (!in) return f.Fail("input", "'input' is required");
  if (in->is_string()) {
    out.texts.push_back(in->get<std::string>());
  } else if (in->is_array()) {
    if (in->empty()) return f.Fail("input", "'input' must not be empty");
    if (in->size() > 2048) return f.Fail("input", "'input' holds at most 2048 items");
    if ((*in)[0].is_number()) {
      out.token_inputs.emplace_back();
      RETURN_IF_ERROR(TokenList(f, "input", *in, &out.token_inputs.back()));
    } else {
      for (const auto& e : *in) {
        if (e.is_string()) {
          if (!out.token_inputs.empty()) return f.Fail("input", "'input' mixes strings and token lists");
          out.texts.push_back(e.get<std::string>());
        } else if (e.is_array()) {
          if (!out.texts.empty()) return f.Fail("input", "'input' mixes strings and token lists");
          out.token_inputs.emplace_back();
          RETURN_IF_ERROR(TokenList(f, "input", e, &out.token_inputs.back()));
        } else {
          return f.Fail("input", "'input' must be a string, an array of strings, or token id arrays");
        }
      }
    }
  } else {
    return f.Fail("input", "'input' must be a string, an array of strings, or token id arrays");
  }
  for (const auto& t : out.texts)
    if (t.empty()) return f.Fail("input", "'input' strings must not be empty");
  for (const auto& t : out.token_inputs)
    if (t.empty()) return f.Fail("input", "'input' token lists must not be empty");
  std::string fmt;
  RETURN_IF_ERROR(f.String("encoding_format", &fmt));
  if (!fmt.empty() && fmt != "float" && fmt != "base64")
    return f.Fail("encoding_format", "'encoding_format' must be 'float' or 'base64'");
  out.base64 = fmt == "base64";
  RETURN_IF_ERROR(f.String("user", &out.user));
  int64_t dims = 0;
  bool set = false;
  RETURN_IF_ERROR(f.Int("dimensions", 1, 1 << 20, &dims, &set));
  if (set) return f.Fail("dimensions", "'dimensions' is not supported");
  return out;
}

std::string EmbeddingsResponseJson(const std::string& model, const v1::GatewayEmbedResponse& resp, bool base64) {
  json data = json::array();
  for (int i = 0; i < resp.embeddings_size(); ++i) {
    const auto& e = resp.embeddings(i);
    json item = {{"object", "embedding"}, {"index", i}};
    if (base64) {
      std::string bytes(reinterpret_cast<const char*>(e.values().data()), e.values_size() * sizeof(float));
      item["embedding"] = absl::Base64Escape(bytes);
    } else {
      item["embedding"] = std::vector<float>(e.values().begin(), e.values().end());
    }
    data.push_back(std::move(item));
  }
  json out = {{"object", "list"},
              {"data", std::move(data)},
              {"model", model},
              {"usage", {{"prompt_tokens", resp.usage().prompt_tokens()}, {"total_tokens", resp.usage().total_tokens()}}}};
  return Dump(out);
}

std::string ModelsListJson(const v1::GatewayListModelsResponse& models, int64_t created) {
  json data = json::array();
  for (const auto& m : models.models())
    data.push_back({{"id", m.name()}, {"object", "model"}, {"created", created}, {"owned_by", "llmesh"}});
  return Dump(json{{"object", "list"}, {"data", std::move(data)}});
}

const char* OpenAiFinishReason(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH: return "length";
    case v1::FINISH_REASON_TOOL_CALLS: return "tool_calls";
    default: return "stop";
  }
}

OpenAiResponseBuilder::OpenAiResponseBuilder(bool chat, std::string id, std::string model, int64_t created, int n,
                                             bool logprobs, int top_logprobs)
    : chat_(chat),
      id_(std::move(id)),
      model_(std::move(model)),
      created_(created),
      logprobs_(logprobs),
      top_logprobs_(top_logprobs),
      choices_(n < 1 ? 1 : n) {}

namespace {
// The text of a sampled token: from its alternatives when listed there, else
// the delta when the delta came from this token alone.
std::string TokenTextOf(const v1::GeneratedToken& t, const v1::GatewayGenerateResponse& r) {
  for (const auto& alt : t.top_logprobs())
    if (alt.token_id() == t.token_id()) return alt.piece();
  return r.tokens_size() == 1 ? r.text_delta() : std::string();
}
// OpenAI's tool_calls array; streamed deltas also number each call.
json ToolCallsOf(const v1::GatewayGenerateResponse& r, bool stream) {
  json calls = json::array();
  for (int k = 0; k < r.tool_calls_size(); ++k) {
    const auto& c = r.tool_calls(k);
    json call = {{"id", c.id()}, {"type", "function"}, {"function", {{"name", c.name()}, {"arguments", c.arguments_json()}}}};
    if (stream) call["index"] = k;
    calls.push_back(std::move(call));
  }
  return calls;
}
json BytesOf(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}
}  // namespace

json OpenAiResponseBuilder::LogprobsOf(const v1::GatewayGenerateResponse& r, Choice* choice) const {
  if (!logprobs_) return nullptr;
  json content = json::array();
  for (const auto& t : r.tokens()) {
    std::string text = TokenTextOf(t, r);
    if (chat_) {
      json top = json::array();
      for (int k = 0; k < t.top_logprobs_size() && k < top_logprobs_; ++k) {
        const auto& alt = t.top_logprobs(k);
        top.push_back({{"token", alt.piece()}, {"logprob", alt.logprob()}, {"bytes", BytesOf(alt.piece())}});
      }
      json entry = {{"token", text}, {"logprob", t.logprob()}, {"bytes", BytesOf(text)}, {"top_logprobs", top}};
      content.push_back(entry);
      if (choice) choice->logprobs.push_back(entry);
    } else {
      json top = json::object();
      for (int k = 0; k < t.top_logprobs_size() && k < top_logprobs_; ++k)
        top[t.top_logprobs(k).piece()] = t.top_logprobs(k).logprob();
      if (choice) {
        choice->token_texts.push_back(text);
        choice->token_logprobs.push_back(t.logprob());
        choice->top.push_back(top);
      }
    }
  }
  return content;
}

void OpenAiResponseBuilder::AccumulateUsage(const v1::GatewayGenerateResponse& r) {
  if (!r.has_usage()) return;
  prompt_tokens_ = r.usage().prompt_tokens();
  completion_tokens_ += r.usage().completion_tokens();
  cached_tokens_ = r.usage().cached_prompt_tokens();
}

json OpenAiResponseBuilder::UsageJson() const {
  json u = {{"prompt_tokens", prompt_tokens_},
            {"completion_tokens", completion_tokens_},
            {"total_tokens", prompt_tokens_ + completion_tokens_}};
  if (chat_) u["prompt_tokens_details"] = {{"cached_tokens", cached_tokens_}};
  return u;
}

std::vector<std::string> OpenAiResponseBuilder::Chunks(const v1::GatewayGenerateResponse& r) {
  std::vector<std::string> out;
  int idx = r.index();
  if (idx < 0 || idx >= static_cast<int>(choices_.size())) return out;
  Choice& c = choices_[idx];
  AccumulateUsage(r);
  bool finished = r.finish_reason() != v1::FINISH_REASON_UNSPECIFIED;
  if (r.text_delta().empty() && r.tokens_size() == 0 && !finished && c.role_sent) return out;
  if (r.cited_chunk_ids_size() > 0) cited_.assign(r.cited_chunk_ids().begin(), r.cited_chunk_ids().end());
  auto wrap = [&](json choice, bool last) {
    json chunk = {{"id", id_},
                  {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
                  {"created", created_},
                  {"model", model_},
                  {"system_fingerprint", nullptr},
                  {"choices", json::array({std::move(choice)})}};
    if (last && citations_) chunk["cited_chunk_ids"] = cited_;
    return Dump(chunk);
  };
  if (chat_ && r.tool_calls_size() > 0) {
    // The calls in one delta, then the finish in the next (as OpenAI streams them).
    json delta = {{"content", nullptr}, {"tool_calls", ToolCallsOf(r, /*stream=*/true)}};
    if (!c.role_sent) {
      delta["role"] = "assistant";
      c.role_sent = true;
    }
    out.push_back(wrap({{"index", idx}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}, false));
  }
  json choice;
  if (chat_) {
    json delta = json::object();
    if (!c.role_sent) {
      delta["role"] = "assistant";
      c.role_sent = true;
    }
    if (!r.text_delta().empty() || !finished) delta["content"] = r.text_delta();
    json lp = nullptr;
    if (logprobs_ && r.tokens_size() > 0) lp = {{"content", LogprobsOf(r, nullptr)}};
    choice = {{"index", idx}, {"delta", delta}, {"logprobs", lp},
              {"finish_reason", finished ? json(OpenAiFinishReason(r.finish_reason())) : json(nullptr)}};
  } else {
    json lp = nullptr;
    if (logprobs_ && r.tokens_size() > 0) {
      Choice tmp;
      LogprobsOf(r, &tmp);
      lp = {{"tokens", tmp.token_texts}, {"token_logprobs", tmp.token_logprobs}, {"top_logprobs", tmp.top},
            {"text_offset", json::array()}};
    }
    choice = {{"index", idx}, {"text", r.text_delta()}, {"logprobs", lp},
              {"finish_reason", finished ? json(OpenAiFinishReason(r.finish_reason())) : json(nullptr)}};
  }
  out.push_back(wrap(std::move(choice), finished));
  return out;
}

std::string OpenAiResponseBuilder::UsageChunk() const {
  json chunk = {{"id", id_},
                {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
                {"created", created_},
                {"model", model_},
                {"system_fingerprint", nullptr},
                {"choices", json::array()},
                {"usage", UsageJson()}};
  return Dump(chunk);
}

void OpenAiResponseBuilder::Add(const v1::GatewayGenerateResponse& r) {
  int idx = r.index();
  if (idx < 0 || idx >= static_cast<int>(choices_.size())) return;
  Choice& c = choices_[idx];
  c.text += r.text_delta();
  LogprobsOf(r, &c);
  if (r.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) c.finish = r.finish_reason();
  if (r.tool_calls_size() > 0) c.tool_calls = ToolCallsOf(r, /*stream=*/false);
  if (r.cited_chunk_ids_size() > 0) cited_.assign(r.cited_chunk_ids().begin(), r.cited_chunk_ids().end());
  AccumulateUsage(r);
}

std::string OpenAiResponseBuilder::Complete() const {
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    json lp = nullptr;
    if (logprobs_) {
      if (chat_) {
        lp = {{"content", c.logprobs}};
      } else {
        json offsets = json::array();
        lp = {{"tokens", c.token_texts}, {"token_logprobs", c.token_logprobs}, {"top_logprobs", c.top},
              {"text_offset", offsets}};
      }
    }
    json choice = {{"index", i}, {"logprobs", lp}, {"finish_reason", OpenAiFinishReason(c.finish)}};
    if (chat_ && !c.tool_calls.is_null()) {
      choice["message"] = {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", c.tool_calls}};
    } else if (chat_) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    } else {
      choice["text"] = c.text;
    }
    choices.push_back(std::move(choice));
  }
  json out = {{"id", id_},
              {"object", chat_ ? "chat.completion" : "text_completion"},
              {"created", created_},
              {"model", model_},
              {"system_fingerprint", nullptr},
              {"choices", std::move(choices)},
              {"usage", UsageJson()}};
  if (citations_) out["cited_chunk_ids"] = cited_;
  return Dump(out);
}

}  // namespace llmesh::gateway
