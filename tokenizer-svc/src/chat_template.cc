#include "llmesh/tokenizer/chat_template.h"

#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace llmesh::tokenizer {
namespace {

constexpr std::array<std::pair<ChatTemplateKind, std::string_view>, 9> kNames = {{
    {ChatTemplateKind::kChatml, "chatml"},
    {ChatTemplateKind::kLlama2, "llama2"},
    {ChatTemplateKind::kLlama3, "llama3"},
    {ChatTemplateKind::kMistralV1, "mistral-v1"},
    {ChatTemplateKind::kMistralV3, "mistral-v3"},
    {ChatTemplateKind::kMistralV3Tekken, "mistral-v3-tekken"},
    {ChatTemplateKind::kPhi3, "phi3"},
    {ChatTemplateKind::kZephyr, "zephyr"},
    {ChatTemplateKind::kGemma, "gemma"},
}};

// Jinja's |trim and Python's str.strip() on the whitespace that matters here.
std::string Trim(std::string_view s) {
  constexpr std::string_view kWs = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(kWs);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kWs);
  return std::string(s.substr(b, e - b + 1));
}

absl::Status Alternation(std::string_view family) {
  return absl::InvalidArgumentError(absl::StrCat(
      std::string(family), " template: conversation roles must alternate user/assistant/user/assistant/..."));
}

// Splits off a leading system message, as most templates do first.
std::pair<const ChatMessage*, std::vector<const ChatMessage*>> SplitSystem(
    const std::vector<ChatMessage>& messages) {
  std::pair<const ChatMessage*, std::vector<const ChatMessage*>> r{nullptr, {}};
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && messages[0].role == "system") {
      r.first = &messages[0];
    } else {
      r.second.push_back(&messages[i]);
    }
  }
  return r;
}

// meta-llama/Llama-2-7b-chat-hf
absl::StatusOr<std::string> RenderLlama2(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  auto [system, loop] = SplitSystem(messages);
  std::string out;
  for (size_t i = 0; i < loop.size(); ++i) {
    const ChatMessage& m = *loop[i];
    if ((m.role == "user") != (i % 2 == 0)) return Alternation("llama2");
    std::string content = m.content;
    if (i == 0 && system != nullptr) {
      content = absl::StrCat("<<SYS>>\n", system->content, "\n<</SYS>>\n\n", m.content);
    }
    if (m.role == "user") {
      absl::StrAppend(&out, o.bos_token, "[INST] ", Trim(content), " [/INST]");
    } else if (m.role == "assistant") {
      absl::StrAppend(&out, " ", Trim(content), " ", o.eos_token);
    }
  }
  return out;
}

// meta-llama/Meta-Llama-3-8B-Instruct
std::string RenderLlama3(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += o.bos_token;
    absl::StrAppend(&out, "<|start_header_id|>", messages[i].role, "<|end_header_id|>\n\n",
                    Trim(messages[i].content), "<|eot_id|>");
  }
  if (o.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string RenderChatml(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  std::string out;
  for (const ChatMessage& m : messages) {
    absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
  }
  if (o.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// mistralai/Mistral-7B-Instruct-v0.1 / v0.2 (current tokenizer_config.json).
absl::StatusOr<std::string> RenderMistralV1(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  auto [system, loop] = SplitSystem(messages);
  std::string out = o.bos_token;
  for (size_t i = 0; i < loop.size(); ++i) {
    const ChatMessage& m = *loop[i];
    if ((m.role == "user") != (i % 2 == 0)) return Alternation("mistral-v1");
    if (m.role == "user") {
      if (i == 0 && system != nullptr) {
        absl::StrAppend(&out, " [INST] ", system->content, "\n\n", m.content, " [/INST]");
      } else {
        absl::StrAppend(&out, " [INST] ", m.content, " [/INST]");
      }
    } else if (m.role == "assistant") {
      absl::StrAppend(&out, " ", m.content, o.eos_token);
    } else {
      return absl::InvalidArgumentError(
          "mistral-v1 template: only user and assistant roles are supported, after an optional system message");
    }
  }
  return out;
}

// mistralai/Mistral-7B-Instruct-v0.3 (tekken=false) and Mistral-Nemo (tekken=true).
// The system message goes into the last user turn, and only if the
// conversation ends with that turn.
absl::StatusOr<std::string> RenderMistralV3(const std::vector<ChatMessage>& messages, const ChatOptions& o,
                                            bool tekken) {
  const std::string_view family = tekken ? "mistral-v3-tekken" : "mistral-v3";
  auto [system, loop] = SplitSystem(messages);
  for (size_t i = 0; i < loop.size(); ++i) {
    const ChatMessage& m = *loop[i];
    if (m.role == "tool" || m.role == "tool_results") {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(family), " template: tool results need a tool_call_id, which ChatMessage does not carry"));
    }
    if ((m.role == "user") != (i % 2 == 0)) return Alternation(family);
  }
  const std::string inst = tekken ? "[INST]" : "[INST] ";
  std::string out = o.bos_token;
  for (size_t i = 0; i < loop.size(); ++i) {
    const ChatMessage& m = *loop[i];
    if (m.role == "user") {
      if (i + 1 == loop.size() && system != nullptr) {
        absl::StrAppend(&out, inst, system->content, "\n\n", m.content, "[/INST]");
      } else {
        absl::StrAppend(&out, inst, m.content, "[/INST]");
      }
    } else if (m.role == "assistant") {
      if (tekken) {
        absl::StrAppend(&out, m.content, o.eos_token);
      } else {
        absl::StrAppend(&out, " ", Trim(m.content), o.eos_token);
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(family), " template: only user and assistant roles are supported, after an optional system message"));
    }
  }
  return out;
}

// microsoft/Phi-3-mini-4k-instruct. Other roles are skipped by the template.
std::string RenderPhi3(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  std::string out;
  for (const ChatMessage& m : messages) {
    if (m.role == "system" || m.role == "user" || m.role == "assistant") {
      absl::StrAppend(&out, "<|", m.role, "|>\n", m.content, "<|end|>\n");
    }
  }
  out += o.add_generation_prompt ? "<|assistant|>\n" : o.eos_token;
  return out;
}

// HuggingFaceH4/zephyr-7b-beta, TinyLlama/TinyLlama-1.1B-Chat-v1.0 (rendered
// with trim_blocks, so each turn ends in the newline after its expression).
std::string RenderZephyr(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || m.role == "system" || m.role == "assistant") {
      absl::StrAppend(&out, "<|", m.role, "|>\n", m.content, o.eos_token, "\n");
    }
    if (i + 1 == messages.size() && o.add_generation_prompt) out += "<|assistant|>\n";
  }
  return out;
}

// google/gemma-3-*-it (Gemma 1/2 reject a system message; Gemma 3 prefixes
// it to the first user turn, which is what we do).
absl::StatusOr<std::string> RenderGemma(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  auto [system, loop] = SplitSystem(messages);
  const std::string first_user_prefix = system != nullptr ? system->content + "\n\n" : "";
  std::string out = o.bos_token;
  for (size_t i = 0; i < loop.size(); ++i) {
    const ChatMessage& m = *loop[i];
    if ((m.role == "user") != (i % 2 == 0)) return Alternation("gemma");
    const std::string role = m.role == "assistant" ? "model" : m.role;
    absl::StrAppend(&out, "<start_of_turn>", role, "\n", i == 0 ? first_user_prefix : "",
                    Trim(m.content), "<end_of_turn>\n");
  }
  if (o.add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

}  // namespace

std::string_view ChatTemplateName(ChatTemplateKind kind) {
  for (const auto& [k, n] : kNames) {
    if (k == kind) return n;
  }
  return "?";
}

absl::StatusOr<ChatTemplateKind> ChatTemplateFromName(std::string_view name) {
  for (const auto& [k, n] : kNames) {
    if (n == name) return k;
  }
  std::string known;
  for (const auto& [k, n] : kNames) absl::StrAppend(&known, known.empty() ? "" : ", ", std::string(n));
  return absl::NotFoundError(
      absl::StrCat("unknown chat template name '", std::string(name), "' (known: ", known, ")"));
}

absl::StatusOr<ChatTemplateKind> DetectChatTemplate(std::string_view t) {
  auto has = [t](std::string_view s) { return t.find(s) != std::string_view::npos; };
  // Same order of tests as llama.cpp's llm_chat_detect_template.
  if (has("<|im_start|>")) return ChatTemplateKind::kChatml;
  if (t.substr(0, 7) == "mistral" || has("[INST]")) {
    if (has("[SYSTEM_PROMPT]")) {
      return absl::NotFoundError("mistral-v7 ([SYSTEM_PROMPT]) templates are not supported");
    }
    if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
      if (has(" [INST]")) return ChatTemplateKind::kMistralV1;
      if (has("\"[INST]\"")) return ChatTemplateKind::kMistralV3Tekken;
      return ChatTemplateKind::kMistralV3;
    }
    return ChatTemplateKind::kLlama2;
  }
  if (has("<|assistant|>") && has("<|end|>")) return ChatTemplateKind::kPhi3;
  // llama.cpp requires "<|endoftext|>"; TinyLlama's template writes eos_token.
  if (has("<|user|>") && (has("<|endoftext|>") || has("eos_token"))) return ChatTemplateKind::kZephyr;
  if (has("<start_of_turn>")) return ChatTemplateKind::kGemma;
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatTemplateKind::kLlama3;
  return absl::NotFoundError("chat template not recognised");
}

absl::StatusOr<ChatTemplateKind> ResolveChatTemplate(std::string_view name_or_source, bool fallback_to_chatml) {
  if (auto byname = ChatTemplateFromName(name_or_source); byname.ok()) return byname;
  auto detected = DetectChatTemplate(name_or_source);
  if (detected.ok()) return detected;
  if (fallback_to_chatml) return ChatTemplateKind::kChatml;
  return absl::InvalidArgumentError(absl::StrCat(
      name_or_source.empty() ? "model has no chat template" : std::string(detected.status().message()),
      "; name one of chatml, llama2, llama3, mistral-v1, mistral-v3, mistral-v3-tekken, phi3, zephyr, gemma"));
}

absl::StatusOr<std::string> RenderChat(ChatTemplateKind kind, const std::vector<ChatMessage>& messages,
                                       const ChatOptions& opts) {
  switch (kind) {
    case ChatTemplateKind::kChatml: return RenderChatml(messages, opts);
    case ChatTemplateKind::kLlama2: return RenderLlama2(messages, opts);
    case ChatTemplateKind::kLlama3: return RenderLlama3(messages, opts);
    case ChatTemplateKind::kMistralV1: return RenderMistralV1(messages, opts);
    case ChatTemplateKind::kMistralV3: return RenderMistralV3(messages, opts, false);
    case ChatTemplateKind::kMistralV3Tekken: return RenderMistralV3(messages, opts, true);
    case ChatTemplateKind::kPhi3: return RenderPhi3(messages, opts);
    case ChatTemplateKind::kZephyr: return RenderZephyr(messages, opts);
    case ChatTemplateKind::kGemma: return RenderGemma(messages, opts);
  }
  return absl::InvalidArgumentError("unknown chat template kind");
}

}  // namespace llmesh::tokenizer
