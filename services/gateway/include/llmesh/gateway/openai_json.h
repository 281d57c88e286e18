// The OpenAI HTTP API <-> the gateway's jobs and responses: request bodies of
// /v1/chat/completions, /v1/completions and /v1/embeddings parsed into
// GenerateJob (unknown fields ignored; wrong types, bad ranges and malformed
// JSON refused with INVALID_ARGUMENT naming the field), and the gateway's
// streamed responses turned into OpenAI objects and stream chunks.
// No exceptions, and a body is parsed once, at a cost linear in its size
// (llmesh/common/json_parse.h: nesting deeper than 128 levels is refused);
// every type is checked before use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/gateway/job.h"
#include "llmesh/v1/gateway.pb.h"
#include "nlohmann/json.hpp"

namespace llmesh::gateway {

struct OpenAiRequest {
  GenerateJob job;
  bool chat = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// On error, *param names the offending field ("" when none applies).
absl::StatusOr<OpenAiRequest> ParseChatCompletionRequest(const std::string& body, const std::string& default_model,
                                                         std::string* param);
absl::StatusOr<OpenAiRequest> ParseCompletionRequest(const std::string& body, const std::string& default_model,
                                                     std::string* param);

// The sampling fields of a request object (temperature, top_p, seed, ...,
// under the names the generation routes take), for routes that take them too.
absl::Status ParseSamplingFields(const nlohmann::ordered_json& body, v1::SamplingParams* sampling, std::string* param);

struct EmbeddingsRequest {
  std::string model;
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> token_inputs;
  bool base64 = false;  // encoding_format
  std::string user;
};
absl::StatusOr<EmbeddingsRequest> ParseEmbeddingsRequest(const std::string& body, const std::string& default_model,
                                                         std::string* param);
std::string EmbeddingsResponseJson(const std::string& model, const v1::GatewayEmbedResponse& resp, bool base64);

std::string ModelsListJson(const v1::GatewayListModelsResponse& models, int64_t created);

const char* OpenAiFinishReason(v1::FinishReason reason);

// Turns the gateway's response stream into OpenAI objects.
class OpenAiResponseBuilder {
 public:
  OpenAiResponseBuilder(bool chat, std::string id, std::string model, int64_t created, int n, bool logprobs,
                        int top_logprobs);

  // RagChat (/v1/rag/chat): the response and the last chunk of each choice
  // carry "cited_chunk_ids".
  void IncludeCitations() { citations_ = true; }

  // Streaming: the chunks (JSON texts, one per SSE event) for one response message.
  std::vector<std::string> Chunks(const v1::GatewayGenerateResponse& r);
  // Streaming with include_usage: the last chunk, with empty choices and the usage.
  std::string UsageChunk() const;

  // Non-streaming: accumulate every message, then build the whole object.
  void Add(const v1::GatewayGenerateResponse& r);
  std::string Complete() const;

 private:
  struct Choice {
    std::string text;
    nlohmann::json logprobs = nlohmann::json::array();  // chat: content entries; completion: parallel arrays built later
    std::vector<std::string> token_texts;
    std::vector<float> token_logprobs;
    std::vector<nlohmann::json> top;  // completion: {token: logprob} per token
    v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
    bool role_sent = false;
    nlohmann::json tool_calls = nullptr;
  };
  nlohmann::json LogprobsOf(const v1::GatewayGenerateResponse& r, Choice* choice) const;
  void AccumulateUsage(const v1::GatewayGenerateResponse& r);
  nlohmann::json UsageJson() const;

  bool chat_;
  std::string id_, model_;
  int64_t created_;
  bool logprobs_;
  int top_logprobs_;
  std::vector<Choice> choices_;
  bool citations_ = false;
  std::vector<std::string> cited_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0, cached_tokens_ = 0;
};

}  // namespace llmesh::gateway
