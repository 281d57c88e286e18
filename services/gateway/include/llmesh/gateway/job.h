// One generation request as the gateway runs it, whatever it came in as
// (gRPC Generate/Chat/RagChat, OpenAI /v1/completions, /v1/chat/completions
// or /v1/rag/chat).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/v1/gateway.pb.h"

namespace llmesh::gateway {

// How a chat may use its tools (see tool_calls.h).
enum class ToolMode {
  kNone,      // no tools, or tool_choice "none": plain text
  kAuto,      // plain text, or a tool call when the answer starts with "{"
  kRequired,  // always a tool call ("required", or one tool forced by name)
};

// RagChat: what to retrieve before the prompt is rendered.
struct RetrievalSpec {
  std::string collection;
  int32_t top_k = 4;
  v1::RetrievalMode mode = v1::RETRIEVAL_MODE_UNSPECIFIED;
  std::vector<v1::MetadataFilter> filters;
};

struct GenerateJob {
  enum class Input { kText, kTokenIds, kChat };
  Input input = Input::kText;
  std::string model;
  std::string prompt;                       // kText
  std::vector<int32_t> prompt_ids;          // kTokenIds
  std::vector<v1::ChatMessage> messages;    // kChat
  std::string template_name;                // kChat: forced template family
  v1::SamplingParams sampling;
  v1::StoppingCriteria stopping;            // stop strings are matched by the gateway
  bool logprobs = false;
  int32_t top_logprobs = 0;
  int32_t n = 1;
  std::string user;
  // kChat only. Retrieve from rag-svc first (query: the last user message)
  // and put the chunks in the prompt; their ids come back as cited_chunk_ids.
  std::optional<RetrievalSpec> retrieval;
  // kChat only: tools the model may call, and "auto" / "none" / "required" /
  // a tool name ("" = auto when tools are given).
  std::vector<v1::ToolSpec> tools;
  std::string tool_choice;
  // Filled by ApplyTools (tool_calls.h), once.
  bool tools_applied = false;
  ToolMode tool_mode = ToolMode::kNone;
  std::vector<std::string> tool_names;  // the tools a call may name
};

struct JobLimits {
  int32_t max_stop_strings = 16;
  int32_t max_stop_bytes = 256;
  int32_t max_tokens_limit = 1 << 20;       // refuse max_tokens above this outright
  int32_t max_messages = 1024;
};

// Checks what the gateway can check without the model: non-empty prompt,
// ranges of n / top_logprobs / max_tokens, stop strings, finite sampling
// parameters, non-negative token ids, the retrieval spec. INVALID_ARGUMENT
// naming the field.
absl::Status ValidateJob(const GenerateJob& job, const JobLimits& limits = {});

GenerateJob JobFromProto(const v1::GatewayGenerateRequest& req);
GenerateJob JobFromProto(const v1::ChatRequest& req);
GenerateJob JobFromProto(const v1::RagChatRequest& req);

// Appends `text` to the first message when it is a system message, else puts
// a system message first (templates such as llama2 take one only there).
void AddToSystemMessage(std::vector<v1::ChatMessage>* messages, const std::string& text);

// The text retrieval searches with: the last user message's content ("" if none).
std::string RetrievalQueryOf(const GenerateJob& job);

}  // namespace llmesh::gateway
