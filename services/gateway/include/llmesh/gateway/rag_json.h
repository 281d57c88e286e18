// HTTP JSON of the retrieval routes:
//   POST /v1/rag/query  {collection, query, top_k?, mode?, filters?}
//        -> {"object": "list", "data": [{chunk_id, document_id, text, score, source, metadata}]}
//   POST /v1/rag/chat   a chat-completion body plus {collection, top_k?, mode?, filters?};
//        answered like /v1/chat/completions (SSE with stream: true), with
//        "cited_chunk_ids" on the response (streamed: on each choice's last chunk).
// mode: "hybrid" (default), "dense" or "lexical". filters: an object of
// metadata key -> value or [values] (all must hold; a list means any of them).
// Errors are INVALID_ARGUMENT with *param naming the field.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "llmesh/gateway/openai_json.h"
#include "llmesh/v1/gateway.pb.h"

namespace llmesh::gateway {

absl::StatusOr<v1::QueryRequest> ParseRagQueryRequest(const std::string& body, std::string* param);
std::string RagQueryResponseJson(const v1::QueryResponse& resp);

absl::StatusOr<OpenAiRequest> ParseRagChatRequest(const std::string& body, const std::string& default_model,
                                                  std::string* param);

}  // namespace llmesh::gateway
