#include "llmesh/agent/builtin_tools.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "llmesh/agent/calculator.h"
#include "nlohmann/json.hpp"

namespace llmesh::agent {
namespace {

using Json = nlohmann::json;

v1::ToolSpec Spec(const char* name, const char* description, const char* schema) {
  v1::ToolSpec s;
  s.set_name(name);
  s.set_description(description);
  s.set_parameters_json_schema(schema);
  return s;
}

absl::StatusOr<Json> ParseArguments(const std::string& arguments_json) {
  Json args = Json::parse(arguments_json, nullptr, /*allow_exceptions=*/false);
  if (args.is_discarded() || !args.is_object()) return absl::InvalidArgumentError("arguments are not a JSON object");
  return args;
}

v1::ToolSpec CalculatorSpec() {
  return Spec(kCalculatorTool,
              "Evaluates an arithmetic expression: numbers, + - * / % ^, parentheses, pi, e, and "
              "sqrt abs floor ceil round exp ln log10 log2 sin cos tan min max.",
              // The pattern keeps a constrained model inside the calculator's
              // alphabet; the parser still checks the rest.
              R"({"type":"object","properties":{"expression":{"type":"string",)"
              R"("pattern":"^[0-9a-z+*/%^()., -]{1,200}$"}},)"
              R"("required":["expression"],"additionalProperties":false})");
}

v1::ToolSpec CurrentTimeSpec() {
  return Spec(kCurrentTimeTool, "The current date and time in UTC.",
              R"({"type":"object","properties":{},"additionalProperties":false})");
}

v1::ToolSpec RagSearchSpec() {
  return Spec(kRagSearchTool, "Searches the knowledge base for passages relevant to a query.",
              R"({"type":"object","properties":{"query":{"type":"string","minLength":1,"maxLength":500},)"
              R"("top_k":{"type":"integer","minimum":1,"maximum":10}},)"
              R"("required":["query"],"additionalProperties":false})");
}

class CalculatorTool : public Tool {
 public:
  CalculatorTool() : spec_(CalculatorSpec()) {}
  const v1::ToolSpec& spec() const override { return spec_; }

  absl::StatusOr<std::string> Call(const std::string& arguments_json, const ToolContext&) override {
    auto args = ParseArguments(arguments_json);
    if (!args.ok()) return args.status();
    auto it = args->find("expression");
    if (it == args->end() || !it->is_string()) return absl::InvalidArgumentError("'expression' must be a string");
    auto value = EvaluateExpression(it->get<std::string>());
    if (!value.ok()) return value.status();
    return FormatNumber(*value);
  }

 private:
  v1::ToolSpec spec_;
};

class CurrentTimeTool : public Tool {
 public:
  explicit CurrentTimeTool(std::function<absl::Time()> now) : spec_(CurrentTimeSpec()), now_(std::move(now)) {}
  const v1::ToolSpec& spec() const override { return spec_; }

  absl::StatusOr<std::string> Call(const std::string&, const ToolContext&) override {
    absl::Time t = now_();
    Json out = {{"utc", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone())},
                {"unix_ms", absl::ToUnixMillis(t)}};
    return out.dump();
  }

 private:
  v1::ToolSpec spec_;
  std::function<absl::Time()> now_;
};

class RagSearchTool : public Tool {
 public:
  RagSearchTool(Retriever& retriever, std::string collection, size_t max_chunk_bytes)
      : spec_(RagSearchSpec()),
        retriever_(retriever),
        collection_(std::move(collection)),
        max_chunk_bytes_(max_chunk_bytes) {}
  const v1::ToolSpec& spec() const override { return spec_; }

  absl::StatusOr<std::string> Call(const std::string& arguments_json, const ToolContext& ctx) override {
    auto args = ParseArguments(arguments_json);
    if (!args.ok()) return args.status();
    auto q = args->find("query");
    if (q == args->end() || !q->is_string() || q->get<std::string>().empty())
      return absl::InvalidArgumentError("'query' must be a non-empty string");
    int64_t top_k = 4;
    if (auto k = args->find("top_k"); k != args->end()) {
      if (!k->is_number_integer() || k->get<int64_t>() < 1 || k->get<int64_t>() > 10)
        return absl::InvalidArgumentError("'top_k' must be an integer in 1..10");
      top_k = k->get<int64_t>();
    }
    v1::QueryRequest req;
    req.set_collection(collection_);
    req.set_query(q->get<std::string>());
    req.set_top_k(static_cast<int32_t>(top_k));
    auto resp = retriever_.Query(req, ctx);
    if (!resp.ok()) return resp.status();
    Json hits = Json::array();
    for (const auto& r : resp->results()) {
      hits.push_back({{"document_id", r.document_id()},
                      {"source", r.source()},
                      {"score", r.score()},
                      {"text", TruncateUtf8(r.text(), max_chunk_bytes_)}});
    }
    return hits.dump(-1, ' ', false, Json::error_handler_t::replace);
  }

 private:
  v1::ToolSpec spec_;
  Retriever& retriever_;
  std::string collection_;
  size_t max_chunk_bytes_;
};

}  // namespace

bool IsBuiltinTool(const std::string& name) {
  return name == kCalculatorTool || name == kCurrentTimeTool || name == kRagSearchTool;
}

std::vector<v1::ToolSpec> BuiltinToolSpecs(bool with_rag_search) {
  std::vector<v1::ToolSpec> out = {CalculatorSpec(), CurrentTimeSpec()};
  if (with_rag_search) out.push_back(RagSearchSpec());
  return out;
}

std::unique_ptr<Tool> MakeCalculatorTool() { return std::make_unique<CalculatorTool>(); }

std::unique_ptr<Tool> MakeCurrentTimeTool(std::function<absl::Time()> now) {
  return std::make_unique<CurrentTimeTool>(std::move(now));
}

std::unique_ptr<Tool> MakeRagSearchTool(Retriever& retriever, std::string collection, size_t max_chunk_bytes) {
  return std::make_unique<RagSearchTool>(retriever, std::move(collection), max_chunk_bytes);
}

}  // namespace llmesh::agent
