#include "llmesh/gateway/rag_json.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "json_fields.h"
#include "nlohmann/json.hpp"

namespace llmesh::gateway {
namespace {

using json = nlohmann::ordered_json;  // fields come out in the order written

using json_fields::Fail;
using json_fields::Get;
// The fields both routes share, into a RetrievalSpec (top_k given its default).
absl::Status ParseRetrieval(const json& body, int32_t default_top_k, RetrievalSpec* out, std::string* param) {
  const json* c = Get(body, "collection");
  if (!c) return Fail(param, "collection", "'collection' is required");
  if (!c->is_string() || c->get_ref<const std::string&>().empty())
    return Fail(param, "collection", "'collection' must be a non-empty string");
  out->collection = c->get<std::string>();
  out->top_k = default_top_k;
  if (const json* k = Get(body, "top_k")) {
    if (!k->is_number_integer() && !k->is_number_unsigned())
      return Fail(param, "top_k", "'top_k' must be an integer");
    int64_t v = k->is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(k->get<uint64_t>(), 1000))
                                        : k->get<int64_t>();
    if (v < 1 || v > 100) return Fail(param, "top_k", absl::StrCat("'top_k' must be in [1, 100]; got ", v));
    out->top_k = static_cast<int32_t>(v);
  }
  out->mode = v1::RETRIEVAL_MODE_HYBRID;
  if (const json* m = Get(body, "mode")) {
    std::string mode = m->is_string() ? m->get<std::string>() : "";
    if (mode == "dense") out->mode = v1::RETRIEVAL_MODE_DENSE;
    else if (mode == "lexical") out->mode = v1::RETRIEVAL_MODE_LEXICAL;
    else if (mode != "hybrid") return Fail(param, "mode", "'mode' must be 'hybrid', 'dense' or 'lexical'");
  }
  if (const json* fs = Get(body, "filters")) {
    const char* kShape = "'filters' must be an object of metadata key -> string or array of strings";
    if (!fs->is_object()) return Fail(param, "filters", kShape);
    for (auto it = fs->begin(); it != fs->end(); ++it) {
      v1::MetadataFilter f;
      if (it.key().empty()) return Fail(param, "filters", "'filters' keys must not be empty");
      f.set_key(it.key());
      if (it->is_string()) {
        f.add_values(it->get<std::string>());
      } else if (it->is_array() && !it->empty()) {
        for (const auto& v : *it) {
          if (!v.is_string()) return Fail(param, "filters", kShape);
          f.add_values(v.get<std::string>());
        }
      } else {
        return Fail(param, "filters", kShape);
      }
      out->filters.push_back(std::move(f));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::QueryRequest> ParseRagQueryRequest(const std::string& body, std::string* param) {
  auto parsed = json_fields::ParseBody<json>(body, param);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  RetrievalSpec spec;
  if (auto st = ParseRetrieval(j, 5, &spec, param); !st.ok()) return st;
  const json* q = Get(j, "query");
  if (!q) return Fail(param, "query", "'query' is required");
  if (!q->is_string() || q->get_ref<const std::string&>().empty())
    return Fail(param, "query", "'query' must be a non-empty string");
  v1::QueryRequest req;
  req.set_collection(spec.collection);
  req.set_query(q->get<std::string>());
  req.set_top_k(spec.top_k);
  req.set_mode(spec.mode);
  for (auto& f : spec.filters) *req.add_filters() = std::move(f);
  return req;
}

std::string RagQueryResponseJson(const v1::QueryResponse& resp) {
  json data = json::array();
  for (const auto& r : resp.results()) {
    json metadata = json::object();
    for (const auto& [k, v] : r.metadata()) metadata[k] = v;
    data.push_back({{"object", "rag.chunk"},
                    {"chunk_id", r.chunk_id()},
                    {"document_id", r.document_id()},
                    {"text", r.text()},
                    {"score", r.score()},
                    {"source", r.source()},
                    {"metadata", std::move(metadata)}});
  }
  return json{{"object", "list"}, {"data", std::move(data)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<OpenAiRequest> ParseRagChatRequest(const std::string& body, const std::string& default_model,
                                                  std::string* param) {
  auto req = ParseChatCompletionRequest(body, default_model, param);
  if (!req.ok()) return req.status();
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);  // valid: parsed above
  RetrievalSpec spec;
  if (auto st = ParseRetrieval(j, 4, &spec, param); !st.ok()) return st;
  req->job.retrieval = std::move(spec);
  if (RetrievalQueryOf(req->job).empty())
    return Fail(param, "messages", "'messages' needs a non-empty user message to search the collection with");
  return req;
}

}  // namespace llmesh::gateway
