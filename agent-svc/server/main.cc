// llmesh-agent: tool-using agents (agent.proto). Sessions and registered
// tools live in SQLite under data_dir; generations go to engine-svc workers
// (round-robin, templates and detokenization by tokenizer-svc) or, when
// `gateway` is set, through the gateway's Chat; rag_search queries rag-svc.
//
// Defaults match deploy/llmesh.yaml for a local stack: tokenizer 50051,
// engine 50052, rag 50060. `llmesh up` passes the real addresses, every
// engine worker included: --engine 127.0.0.1:50052,127.0.0.1:50053.
#include <filesystem>
#include <memory>

#include "agent_service.h"
#include "engine_backend.h"
#include "gateway_backend.h"
#include "llmesh/agent/agent.h"
#include "llmesh/agent/store.h"
#include "llmesh/agent/tool_registry.h"
#include "llmesh/common/logging.h"
#include "llmesh/common/work_pool.h"
#include "llmesh/rpc/service_main.h"
#include "rag_retriever.h"
#include "remote_tool.h"
#include "spdlog/spdlog.h"

namespace {

using namespace llmesh::agent;

class Module : public llmesh::rpc::ServiceModule {
 public:
  std::vector<llmesh::OptionSpec> Options() const override {
    return {
        {"data_dir", "data/agent", "Directory of the sessions database (agent.db)"},
        {"model", "", "Default model of runs that name none (the stack file's common.model)"},
        {"engine", "127.0.0.1:50052", "Comma-separated engine-svc targets, used round-robin for generations"},
        {"tokenizer", "127.0.0.1:50051", "tokenizer-svc target: chat templates and detokenization"},
        {"gateway", "", "Gateway target; when set, generations go through its Chat instead of engine/tokenizer"},
        {"gateway_api_key", "", "API key for the gateway (also LLMESH_AGENT_GATEWAY_API_KEY)"},
        {"rag", "127.0.0.1:50060", "rag-svc target for rag_search; empty disables rag_search"},
        {"rag_collection", "", "Collection rag_search searches when a run names none"},
        {"max_steps", "8", "Default model turns per run"},
        {"max_tokens", "1024", "Default tokens generated per run"},
        {"max_wall", "60s", "Default wall-clock budget per run"},
        {"tool_timeout", "10s", "Default timeout of one tool call"},
        {"max_steps_cap", "64", "Most turns a run may ask for"},
        {"max_tokens_cap", "32768", "Most tokens a run may ask for"},
        {"max_wall_cap", "30m", "Longest wall-clock budget a run may ask for (also caps a Run's deadline)"},
        {"tool_timeout_cap", "5m", "Longest tool timeout a run may ask for"},
        {"max_tool_output_bytes", "8192", "A tool's output is cut to this before the model reads it"},
        {"max_history_messages", "64", "Latest session messages put in each prompt"},
        {"runs", "16", "Runs in progress at once (threads)"},
        {"max_queue", "64", "Runs waiting for a thread; beyond it, RESOURCE_EXHAUSTED"},
        {"describe_timeout", "10s", "Deadline of RegisterTool's Describe call"},
    };
  }

  absl::Status Init(const llmesh::Config& config, llmesh::rpc::ServerRunner& runner) override {
    AgentOptions o;
    o.default_model = config.GetString("model");
    o.default_rag_collection = config.GetString("rag_collection");
    auto st = ReadLimits(config, o);
    if (!st.ok()) return st;
    auto runs = config.GetInt("runs");
    auto queue = config.GetInt("max_queue");
    if (!runs.ok()) return runs.status();
    if (!queue.ok()) return queue.status();
    if (*runs < 1 || *runs > 1024) return absl::InvalidArgumentError("runs must be in 1..1024");
    if (*queue < 1) return absl::InvalidArgumentError("max_queue must be >= 1");
    ServiceLimits limits;
    limits.max_run_timeout = o.max_wall_cap;
    auto describe = config.GetDuration("describe_timeout");
    if (!describe.ok()) return describe.status();
    limits.describe_timeout = *describe;

    std::error_code ec;
    const std::string dir = config.GetString("data_dir");
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError("cannot create data_dir " + dir + ": " + ec.message());
    auto store = AgentStore::Open(dir + "/agent.db");
    if (!store.ok()) return store.status();
    store_ = std::move(*store);

    // Registered tools survive restarts; their processes need not be up yet.
    auto tools = store_->ListTools();
    if (!tools.ok()) return tools.status();
    for (const auto& spec : *tools) {
      if (auto s = registry_.Add(std::make_shared<RemoteTool>(spec)); !s.ok())
        spdlog::warn("event=tool_not_restored name={} error=\"{}\"", spec.name(), s.message());
    }

    if (!config.GetString("gateway").empty()) {
      backend_ = std::make_unique<GatewayBackend>(config.GetString("gateway"), config.GetString("gateway_api_key"));
    } else {
      auto engines = config.GetList("engine");
      if (engines.empty()) return absl::InvalidArgumentError("engine: at least one target (or set gateway)");
      backend_ = std::make_unique<EngineBackend>(engines, config.GetString("tokenizer"));
    }
    if (!config.GetString("rag").empty()) retriever_ = std::make_unique<RagRetriever>(config.GetString("rag"));

    agent_ = std::make_unique<Agent>(o, *backend_, *store_, registry_, retriever_.get());
    run_pool_ = std::make_unique<llmesh::WorkPool>(static_cast<int>(*runs), static_cast<size_t>(*queue));
    rpc_pool_ = std::make_unique<llmesh::WorkPool>(4, 256);
    service_ = std::make_unique<AgentServiceImpl>(*agent_, *store_, registry_, retriever_ != nullptr, *run_pool_,
                                                  *rpc_pool_, limits);
    runner.AddService(service_.get(), llmesh::v1::AgentService::service_full_name());
    spdlog::info("event=agent_ready data_dir={} backend={} rag={} tools_restored={}", dir,
                 config.GetString("gateway").empty() ? "engine" : "gateway", config.GetString("rag"), tools->size());
    return absl::OkStatus();
  }

  void Stopping() override {
    // The server has drained (or cancelled) every RPC; the pools run what is
    // queued, which finishes at once on a cancelled call.
    if (run_pool_) run_pool_->Stop();
    if (rpc_pool_) rpc_pool_->Stop();
  }

 private:
  static absl::Status ReadLimits(const llmesh::Config& config, AgentOptions& o) {
    struct IntOpt {
      const char* name;
      int64_t lo, hi;
      int64_t* out;
    };
    int64_t steps, tokens, steps_cap, tokens_cap, out_bytes, history;
    const IntOpt ints[] = {
        {"max_steps", 1, 1024, &steps},         {"max_tokens", 1, 1 << 20, &tokens},
        {"max_steps_cap", 1, 1024, &steps_cap}, {"max_tokens_cap", 1, 1 << 20, &tokens_cap},
        {"max_tool_output_bytes", 64, 1 << 20, &out_bytes}, {"max_history_messages", 1, 100000, &history},
    };
    for (const auto& i : ints) {
      auto v = config.GetInt(i.name);
      if (!v.ok()) return v.status();
      if (*v < i.lo || *v > i.hi)
        return absl::InvalidArgumentError(std::string(i.name) + " must be in " + std::to_string(i.lo) + ".." +
                                          std::to_string(i.hi));
      *i.out = *v;
    }
    struct DurOpt {
      const char* name;
      absl::Duration* out;
    };
    const DurOpt durs[] = {{"max_wall", &o.default_max_wall},
                           {"tool_timeout", &o.default_tool_timeout},
                           {"max_wall_cap", &o.max_wall_cap},
                           {"tool_timeout_cap", &o.tool_timeout_cap}};
    for (const auto& d : durs) {
      auto v = config.GetDuration(d.name);
      if (!v.ok()) return v.status();
      if (*v <= absl::ZeroDuration()) return absl::InvalidArgumentError(std::string(d.name) + " must be positive");
      *d.out = *v;
    }
    if (steps > steps_cap || tokens > tokens_cap || o.default_max_wall > o.max_wall_cap ||
        o.default_tool_timeout > o.tool_timeout_cap)
      return absl::InvalidArgumentError("a default limit is above its cap");
    o.default_max_steps = static_cast<int32_t>(steps);
    o.default_max_tokens = static_cast<int32_t>(tokens);
    o.max_steps_cap = static_cast<int32_t>(steps_cap);
    o.max_tokens_cap = static_cast<int32_t>(tokens_cap);
    o.max_tool_output_bytes = static_cast<size_t>(out_bytes);
    o.max_history_messages = static_cast<size_t>(history);
    return absl::OkStatus();
  }

  std::unique_ptr<AgentStore> store_;
  ToolRegistry registry_;
  std::unique_ptr<LlmBackend> backend_;
  std::unique_ptr<Retriever> retriever_;
  std::unique_ptr<Agent> agent_;
  std::unique_ptr<llmesh::WorkPool> run_pool_;
  std::unique_ptr<llmesh::WorkPool> rpc_pool_;
  std::unique_ptr<AgentServiceImpl> service_;
};

}  // namespace

int main(int argc, char** argv) {
  Module module;
  return llmesh::rpc::RunService(argc, argv, "agent", "127.0.0.1:50061", module);
}
