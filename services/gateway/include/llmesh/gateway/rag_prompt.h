// Retrieval-augmented chat: how retrieved chunks enter the prompt. They go in
// the system message (so every chat template renders them the same way),
// each marked with its chunk id so the answer can refer to it; the ids put in
// the prompt are what RagChat returns as cited_chunk_ids.
#pragma once

#include <string>
#include <vector>

#include "llmesh/v1/gateway.pb.h"

namespace llmesh::gateway {

// The system-message text for `results` ("" when there are none).
std::string RetrievedContext(const std::string& collection, const std::vector<v1::QueryResult>& results);

// Adds the context to the conversation's system message; returns the chunk ids put in.
std::vector<std::string> AugmentWithContext(const std::string& collection, const std::vector<v1::QueryResult>& results,
                                            std::vector<v1::ChatMessage>* messages);

}  // namespace llmesh::gateway
