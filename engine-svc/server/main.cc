// llmesh-engine: model execution behind engine.proto. Health is NOT_SERVING
// until a model is loaded (at start-up with --model, or by LoadModel).
#include "engine_service.h"
#include "registration.h"
#include "llmesh/common/logging.h"
#include "llmesh/rpc/service_main.h"
#include "spdlog/spdlog.h"

namespace {

class Module : public llmesh::rpc::ServiceModule {
 public:
  std::vector<llmesh::OptionSpec> Options() const override {
    std::vector<llmesh::OptionSpec> options = {
        {"model_dir", "models", "Directory of GGUF files; LoadModel takes names in it, never paths"},
        {"model", "", "Comma-separated model names to load at start-up"},
        {"threads", "0", "Compute threads (0: one per core)"},
        {"n_ctx", "0", "Context window per sequence in tokens (0: the model's)"},
        {"max_seqs", "16", "Sequences decoded together in one batch"},
        {"max_batch_tokens", "256", "Tokens per forward step (decodes + prefill chunks)"},
        {"max_queue", "256", "Requests waiting for the batch; beyond it, RESOURCE_EXHAUSTED"},
        {"kv_budget_mb", "256", "KV cache memory per model, MiB (preallocated)"},
        {"kv_block_size", "16", "Positions per KV block"},
        {"session_ttl", "60s", "Idle time before a Prefill/Decode session is dropped"},
        {"max_sessions", "64", "Open sessions at most"},
    };
    for (auto& o : llmesh::engine::RegistrationOptions()) options.push_back(std::move(o));
    return options;
  }

  absl::Status Init(const llmesh::Config& config, llmesh::rpc::ServerRunner& runner) override {
    llmesh::engine::EngineConfig ec;
    ec.model_dir = config.GetString("model_dir");
    auto get = [&](const char* name, auto* out) -> absl::Status {
      auto v = config.GetInt(name);
      if (!v.ok()) return v.status();
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(*v);
      return absl::OkStatus();
    };
    int64_t kv_mb = 0;
    for (auto st : {get("threads", &ec.n_threads), get("n_ctx", &ec.scheduler.n_ctx),
                    get("max_seqs", &ec.scheduler.max_seqs), get("max_batch_tokens", &ec.scheduler.max_batch_tokens),
                    get("max_queue", &ec.scheduler.max_queue), get("kv_block_size", &ec.scheduler.kv_block_size),
                    get("max_sessions", &ec.max_sessions), get("kv_budget_mb", &kv_mb)}) {
      if (!st.ok()) return st;
    }
    if (kv_mb < 1) return absl::InvalidArgumentError("kv_budget_mb must be >= 1");
    ec.scheduler.kv_budget_bytes = static_cast<size_t>(kv_mb) << 20;
    auto ttl = config.GetDuration("session_ttl");
    if (!ttl.ok()) return ttl.status();
    ec.session_ttl = *ttl;
    preload_ = config.GetList("model");
    config_ = &config;
    engine_ = std::make_unique<llmesh::engine::Engine>(ec);
    runner_ = &runner;
    service_ = std::make_unique<llmesh::engine::EngineServiceImpl>(
        *engine_, [this] { runner_->SetServing(engine_->AnyLoaded()); });
    runner.AddService(service_.get(), llmesh::v1::EngineService::service_full_name());
    return absl::OkStatus();
  }

  absl::Status Started(llmesh::rpc::ServerRunner& runner) override {
    for (const auto& name : preload_) {
      auto info = engine_->LoadModel(name);
      if (!info.ok()) return info.status();
    }
    runner.SetServing(engine_->AnyLoaded());
    auto reg = llmesh::engine::StartRegistration(*config_, runner, *engine_);  // after the models load
    if (!reg.ok()) return reg.status();
    registration_ = std::move(*reg);
    // After the deregistration hook (added above): gateways have stopped
    // routing here by the time GenerateMux streams refuse new generations.
    runner.OnShutdown([this] { service_->Drain(); });
    return absl::OkStatus();
  }

  void Stopping() override {
    registration_.reset();
    engine_.reset();
  }

 private:
  std::vector<std::string> preload_;
  std::unique_ptr<llmesh::engine::Engine> engine_;
  std::unique_ptr<llmesh::engine::EngineServiceImpl> service_;
  llmesh::rpc::ServerRunner* runner_ = nullptr;
  const llmesh::Config* config_ = nullptr;
  std::shared_ptr<llmesh::engine::GatewayRegistration> registration_;
};

}  // namespace

int main(int argc, char** argv) {
  Module module;
  return llmesh::rpc::RunService(argc, argv, "engine", "127.0.0.1:50052", module);
}
