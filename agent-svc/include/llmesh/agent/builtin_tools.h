// The tools every agent may use without registering anything:
//   calculator    {"expression": "2*(3+4)"}     → "14"           (calculator.h)
//   current_time  {}                            → {"utc": "2026-11-05T12:00:00Z", "unix_ms": ...}
//   rag_search    {"query": "...", "top_k": 4}  → [{"document_id", "source", "score", "text"}, ...]
// rag_search searches the run's collection through a Retriever (rag-svc Query
// in the server; a fake in tests). None of them touches the file system, a
// shell or the network beyond rag-svc.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "llmesh/agent/tool.h"
#include "llmesh/v1/rag.pb.h"

namespace llmesh::agent {

inline constexpr char kCalculatorTool[] = "calculator";
inline constexpr char kCurrentTimeTool[] = "current_time";
inline constexpr char kRagSearchTool[] = "rag_search";

bool IsBuiltinTool(const std::string& name);
// Specs of the built-in tools (rag_search only when `with_rag_search`).
std::vector<v1::ToolSpec> BuiltinToolSpecs(bool with_rag_search);

// rag_search's view of rag-svc.
class Retriever {
 public:
  virtual ~Retriever() = default;
  virtual absl::StatusOr<v1::QueryResponse> Query(const v1::QueryRequest& request, const ToolContext& ctx) = 0;
};

std::unique_ptr<Tool> MakeCalculatorTool();
// `now` is the clock (absl::Now in production).
std::unique_ptr<Tool> MakeCurrentTimeTool(std::function<absl::Time()> now = absl::Now);
// Searches `collection`; each hit's text is cut to `max_chunk_bytes`.
std::unique_ptr<Tool> MakeRagSearchTool(Retriever& retriever, std::string collection,
                                        size_t max_chunk_bytes = 2000);

}  // namespace llmesh::agent
