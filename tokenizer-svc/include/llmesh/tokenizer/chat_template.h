// Chat prompt rendering for the common template families, each reproducing
// its published Jinja template byte for byte (no Jinja engine). The family is
// detected from `tokenizer.chat_template` the way llama.cpp's
// llm_chat_detect_template does, or chosen by name.
//
// The rendered text contains BOS/EOS wherever the template writes them, so
// encode it with add_special=false, parse_special=true (as HF's
// apply_chat_template(tokenize=True) does).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace llmesh::tokenizer {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool"
  std::string content;
};

enum class ChatTemplateKind {
  kChatml,           // <|im_start|>role\n...<|im_end|>\n (Qwen, Hermes, ...)
  kLlama2,           // Llama-2-chat: <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST]
  kLlama3,           // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  kMistralV1,        // Mistral-7B-Instruct v0.1/v0.2: " [INST] ... [/INST]"
  kMistralV3,        // Mistral-7B-Instruct v0.3: "[INST] ...[/INST]"
  kMistralV3Tekken,  // Mistral-Nemo: "[INST]...[/INST]"
  kPhi3,             // <|user|>\n...<|end|>\n
  kZephyr,           // <|user|>\n...</s>\n (Zephyr, TinyLlama-Chat)
  kGemma,            // <start_of_turn>user\n...<end_of_turn>\n
};

std::string_view ChatTemplateName(ChatTemplateKind kind);
// "chatml", "llama2", "llama3", "mistral-v1", "mistral-v3",
// "mistral-v3-tekken", "phi3", "zephyr", "gemma".
absl::StatusOr<ChatTemplateKind> ChatTemplateFromName(std::string_view name);
// Recognises a Jinja template source by its distinctive substrings.
// NOT_FOUND if none matches.
absl::StatusOr<ChatTemplateKind> DetectChatTemplate(std::string_view jinja_source);

struct ChatOptions {
  bool add_generation_prompt = true;  // open an assistant turn at the end
  std::string bos_token = "<s>";
  std::string eos_token = "</s>";
};

// INVALID_ARGUMENT where the published template raises (roles not
// alternating, unsupported role, system message where none is allowed).
absl::StatusOr<std::string> RenderChat(ChatTemplateKind kind, const std::vector<ChatMessage>& messages,
                                       const ChatOptions& opts);

// Resolves `name_or_source`: a template name, else the Jinja source to
// detect. Unrecognised: INVALID_ARGUMENT, unless `fallback_to_chatml`.
absl::StatusOr<ChatTemplateKind> ResolveChatTemplate(std::string_view name_or_source,
                                                     bool fallback_to_chatml = false);

}  // namespace llmesh::tokenizer
