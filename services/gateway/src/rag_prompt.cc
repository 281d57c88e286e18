#include "llmesh/gateway/rag_prompt.h"

#include "absl/strings/str_cat.h"
#include "llmesh/gateway/job.h"

namespace llmesh::gateway {

std::string RetrievedContext(const std::string& collection, const std::vector<v1::QueryResult>& results) {
  if (results.empty()) return "";
  std::string out = absl::StrCat("Answer with the help of these passages from the collection '", collection,
                                 "'. Each starts with its id in brackets; name the ids you use.");
  for (const auto& r : results) {
    absl::StrAppend(&out, "\n\n[", r.chunk_id(), "]");
    if (!r.source().empty()) absl::StrAppend(&out, " (", r.source(), ")");
    absl::StrAppend(&out, "\n", r.text());
  }
  return out;
}

std::vector<std::string> AugmentWithContext(const std::string& collection, const std::vector<v1::QueryResult>& results,
                                            std::vector<v1::ChatMessage>* messages) {
  std::vector<std::string> ids;
  if (results.empty()) return ids;
  AddToSystemMessage(messages, RetrievedContext(collection, results));
  for (const auto& r : results) ids.push_back(r.chunk_id());
  return ids;
}

}  // namespace llmesh::gateway
