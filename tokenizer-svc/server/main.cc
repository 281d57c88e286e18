// llmesh-tokenizer: tokenization, detokenization and chat templates for the
// GGUF models in a directory.
#include "llmesh/rpc/service_main.h"
#include "spdlog/spdlog.h"
#include "tokenizer_service.h"

namespace {

class Module : public llmesh::rpc::ServiceModule {
 public:
  std::vector<llmesh::OptionSpec> Options() const override {
    return {{"model_dir", "models", "Directory of GGUF files; models are addressed by file name"},
            {"preload", "", "Comma-separated model names to load at start-up (others load on first use)"}};
  }

  absl::Status Init(const llmesh::Config& config, llmesh::rpc::ServerRunner& runner) override {
    registry_ = std::make_unique<llmesh::tokenizer::TokenizerRegistry>(config.GetString("model_dir"));
    for (const auto& name : config.GetList("preload")) {
      if (auto tok = registry_->Get(name); !tok.ok()) return tok.status();
      spdlog::info("event=model_loaded model={}", name);
    }
    service_ = std::make_unique<llmesh::tokenizer::TokenizerServiceImpl>(*registry_);
    runner.AddService(service_.get(), llmesh::v1::TokenizerService::service_full_name());
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<llmesh::tokenizer::TokenizerRegistry> registry_;
  std::unique_ptr<llmesh::tokenizer::TokenizerServiceImpl> service_;
};

}  // namespace

int main(int argc, char** argv) {
  Module module;
  return llmesh::rpc::RunService(argc, argv, "tokenizer", "127.0.0.1:50051", module);
}
