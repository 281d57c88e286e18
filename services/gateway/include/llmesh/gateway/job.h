// One generation request as the gateway runs it, whatever it came in as
// (gRPC Generate/Chat, OpenAI /v1/completions or /v1/chat/completions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/v1/gateway.pb.h"

namespace llmesh::gateway {

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
};

struct JobLimits {
  int32_t max_stop_strings = 16;
  int32_t max_stop_bytes = 256;
  int32_t max_tokens_limit = 1 << 20;       // refuse max_tokens above this outright
  int32_t max_messages = 1024;
};

// Checks what the gateway can check without the model: non-empty prompt,
// ranges of n / top_logprobs / max_tokens, stop strings, finite sampling
// parameters, non-negative token ids. INVALID_ARGUMENT naming the field.
absl::Status ValidateJob(const GenerateJob& job, const JobLimits& limits = {});

GenerateJob JobFromProto(const v1::GatewayGenerateRequest& req);
GenerateJob JobFromProto(const v1::ChatRequest& req);

}  // namespace llmesh::gateway
