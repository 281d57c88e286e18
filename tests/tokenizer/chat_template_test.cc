// Golden renderings, each worked out by hand from the family's published
// Jinja template (HF tokenizer_config.json, rendered with trim_blocks and
// lstrip_blocks as transformers does), with bos "<s>" and eos "</s>" unless
// the family defines its own.
#include <gtest/gtest.h>

#include "llmesh/tokenizer/chat_template.h"

namespace llmesh::tokenizer {
namespace {

const std::vector<ChatMessage> kConv = {
    {"system", "You are terse."},
    {"user", "Hi"},
    {"assistant", "Hello."},
    {"user", "Bye?"},
};
const std::vector<ChatMessage> kNoSystem = {kConv[1], kConv[2], kConv[3]};

std::string Render(ChatTemplateKind k, const std::vector<ChatMessage>& m, bool gen,
                   std::string bos = "<s>", std::string eos = "</s>") {
  ChatOptions o;
  o.add_generation_prompt = gen;
  o.bos_token = bos;
  o.eos_token = eos;
  auto r = RenderChat(k, m, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : "";
}

TEST(ChatTemplate, Chatml) {
  EXPECT_EQ(Render(ChatTemplateKind::kChatml, kConv, true),
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(Render(ChatTemplateKind::kChatml, {{"user", "Hi"}}, false), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, kConv, true),
            "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye? [/INST]");
  // add_generation_prompt has no effect on this template.
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, kNoSystem, false),
            "<s>[INST] Hi [/INST] Hello. </s><s>[INST] Bye? [/INST]");
  auto bad = RenderChat(ChatTemplateKind::kLlama2, {{"assistant", "x"}}, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplate, Llama3) {
  const std::string bos = "<|begin_of_text|>", eos = "<|eot_id|>";
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, kConv, true, bos, eos),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, {{"user", "  Hi \n"}}, false, bos, eos),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, MistralV1) {
  EXPECT_EQ(Render(ChatTemplateKind::kMistralV1, kConv, true),
            "<s> [INST] You are terse.\n\nHi [/INST] Hello.</s> [INST] Bye? [/INST]");
  EXPECT_EQ(Render(ChatTemplateKind::kMistralV1, kNoSystem, false),
            "<s> [INST] Hi [/INST] Hello.</s> [INST] Bye? [/INST]");
}

TEST(ChatTemplate, MistralV3SystemGoesToLastUserTurn) {
  EXPECT_EQ(Render(ChatTemplateKind::kMistralV3, kConv, true),
            "<s>[INST] Hi[/INST] Hello.</s>[INST] You are terse.\n\nBye?[/INST]");
  EXPECT_EQ(Render(ChatTemplateKind::kMistralV3Tekken, kConv, true),
            "<s>[INST]Hi[/INST]Hello.</s>[INST]You are terse.\n\nBye?[/INST]");
  // Conversation ending with the assistant: the template drops the system message.
  EXPECT_EQ(Render(ChatTemplateKind::kMistralV3, {kConv[0], kConv[1], kConv[2]}, false),
            "<s>[INST] Hi[/INST] Hello.</s>");
}

TEST(ChatTemplate, Phi3) {
  const std::string eos = "<|endoftext|>";
  EXPECT_EQ(Render(ChatTemplateKind::kPhi3, kConv, true, "<s>", eos),
            "<|system|>\nYou are terse.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n"
            "<|user|>\nBye?<|end|>\n<|assistant|>\n");
  EXPECT_EQ(Render(ChatTemplateKind::kPhi3, {{"user", "Hi"}}, false, "<s>", eos),
            "<|user|>\nHi<|end|>\n<|endoftext|>");
}

TEST(ChatTemplate, Zephyr) {
  EXPECT_EQ(Render(ChatTemplateKind::kZephyr, kConv, true),
            "<|system|>\nYou are terse.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n"
            "<|user|>\nBye?</s>\n<|assistant|>\n");
  EXPECT_EQ(Render(ChatTemplateKind::kZephyr, {{"user", "Hi"}}, false), "<|user|>\nHi</s>\n");
}

TEST(ChatTemplate, Gemma) {
  const std::string bos = "<bos>", eos = "<eos>";
  EXPECT_EQ(Render(ChatTemplateKind::kGemma, kConv, true, bos, eos),
            "<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n"
            "<start_of_turn>model\nHello.<end_of_turn>\n"
            "<start_of_turn>user\nBye?<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(Render(ChatTemplateKind::kGemma, {{"user", "Hi"}}, false, bos, eos),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n");
}

TEST(ChatTemplate, DetectionFromPublishedSources) {
  struct Case {
    const char* src;
    ChatTemplateKind kind;
  };
  const Case cases[] = {
      {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
       "'<|im_end|>' + '\\n'}}{% endfor %}",
       ChatTemplateKind::kChatml},
      {"{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message "
       "%}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}",
       ChatTemplateKind::kLlama2},
      {"{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
       "'<|eot_id|>' }}",
       ChatTemplateKind::kLlama3},
      {"{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}",
       ChatTemplateKind::kMistralV1},
      {"{{- \"[AVAILABLE_TOOLS] [\" }}{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}",
       ChatTemplateKind::kMistralV3},
      {"{{- \"[AVAILABLE_TOOLS][\" }}{{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}",
       ChatTemplateKind::kMistralV3Tekken},
      {"{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}",
       ChatTemplateKind::kPhi3},
      {"{{ '<|user|>\\n' + message['content'] + eos_token }}", ChatTemplateKind::kZephyr},
      {"{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}",
       ChatTemplateKind::kGemma},
  };
  for (const Case& c : cases) {
    auto k = DetectChatTemplate(c.src);
    ASSERT_TRUE(k.ok()) << c.src;
    EXPECT_EQ(*k, c.kind) << c.src;
  }
}

TEST(ChatTemplate, ResolveByNameAndFallback) {
  EXPECT_EQ(*ResolveChatTemplate("gemma"), ChatTemplateKind::kGemma);
  EXPECT_EQ(*ResolveChatTemplate("mistral-v3-tekken"), ChatTemplateKind::kMistralV3Tekken);
  auto unknown = ResolveChatTemplate("{{ something else }}");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ResolveChatTemplate("{{ something else }}", /*fallback_to_chatml=*/true),
            ChatTemplateKind::kChatml);
  EXPECT_FALSE(ResolveChatTemplate("").ok());
  for (auto k : {ChatTemplateKind::kChatml, ChatTemplateKind::kLlama2, ChatTemplateKind::kLlama3,
                 ChatTemplateKind::kMistralV1, ChatTemplateKind::kMistralV3,
                 ChatTemplateKind::kMistralV3Tekken, ChatTemplateKind::kPhi3, ChatTemplateKind::kZephyr,
                 ChatTemplateKind::kGemma}) {
    EXPECT_EQ(*ChatTemplateFromName(ChatTemplateName(k)), k);
  }
}

}  // namespace
}  // namespace llmesh::tokenizer
