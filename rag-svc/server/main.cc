// llmesh-rag: collections, ingest and retrieval. Health is NOT_SERVING until
// storage is open (every collection's index recovered from SQLite).
//
// Defaults match deploy/llmesh.yaml for a local stack: engine 127.0.0.1:50052,
// tokenizer 127.0.0.1:50051. Embed spreads over several engine workers
// (engine_pool.h): a list (--engine 127.0.0.1:50052,127.0.0.1:50053), a DNS
// name's every address (--engine dns:///engine:50052), or the workers the
// gateway routes to (--gateway 127.0.0.1:50050, as llmesh up passes it).
#include <condition_variable>
#include <mutex>
#include <thread>

#include "downstream.h"
#include "llmesh/common/logging.h"
#include "llmesh/common/work_pool.h"
#include "llmesh/rag/rag.h"
#include "llmesh/rpc/service_main.h"
#include "rag_service.h"
#include "spdlog/spdlog.h"

namespace {

using llmesh::rag::Rag;

class Module : public llmesh::rpc::ServiceModule {
 public:
  std::vector<llmesh::OptionSpec> Options() const override {
    return {
        {"data_dir", "data/rag", "Directory of collections (SQLite databases and HNSW indexes)"},
        {"engine", "127.0.0.1:50052",
         "Comma-separated engine-svc targets for Embed; dns:///host:port means every address of the name "
         "(ignored when gateway is set)"},
        {"gateway", "", "Gateway whose live engine workers (WorkerRegistry.ListWorkers) take Embed calls"},
        {"engine_refresh", "2s", "How often the engine workers are listed again (gateway, dns:/// targets)"},
        {"tokenizer", "127.0.0.1:50051", "tokenizer-svc gRPC target, for token-aware chunking"},
        {"chunk_tokens", "256", "Default chunk size in tokens (collections may set their own)"},
        {"overlap_tokens", "32", "Default chunk overlap in tokens"},
        {"hnsw_m", "16", "Default HNSW M"},
        {"hnsw_ef_construction", "200", "Default HNSW ef_construction"},
        {"hnsw_ef_search", "64", "Default HNSW ef_search"},
        {"embed_batch", "16", "Chunks per Embed call"},
        {"embed_attempts", "4", "Attempts per Embed call on UNAVAILABLE / DEADLINE_EXCEEDED"},
        {"downstream_timeout", "60s", "Longest deadline given to a downstream call"},
        {"save_interval", "30s", "How often changed HNSW indexes are saved (and at shutdown)"},
        {"workers", "8", "Threads running RPC work"},
        {"max_queue", "256", "RPCs waiting for a worker; beyond it, RESOURCE_EXHAUSTED"},
    };
  }

  absl::Status Init(const llmesh::Config& config, llmesh::rpc::ServerRunner& runner) override {
    options_.data_dir = config.GetString("data_dir");
    int64_t v[12] = {};
    const char* ints[] = {"chunk_tokens", "overlap_tokens", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search",
                          "embed_batch", "embed_attempts", "workers", "max_queue"};
    for (size_t i = 0; i < std::size(ints); ++i) {
      auto x = config.GetInt(ints[i]);
      if (!x.ok()) return x.status();
      v[i] = *x;
    }
    options_.default_chunking = {static_cast<int32_t>(v[0]), static_cast<int32_t>(v[1])};
    options_.default_hnsw = {static_cast<int32_t>(v[2]), static_cast<int32_t>(v[3]), static_cast<int32_t>(v[4])};
    if (v[5] < 1 || v[5] > 256) return absl::InvalidArgumentError("embed_batch must be in 1..256");
    if (v[6] < 1 || v[6] > 10) return absl::InvalidArgumentError("embed_attempts must be in 1..10");
    if (v[7] < 1 || v[7] > 256) return absl::InvalidArgumentError("workers must be in 1..256");
    if (v[8] < 1) return absl::InvalidArgumentError("max_queue must be >= 1");
    options_.collection.embed_batch = static_cast<int>(v[5]);
    options_.collection.retry.max_attempts = static_cast<int>(v[6]);
    auto timeout = config.GetDuration("downstream_timeout");
    if (!timeout.ok()) return timeout.status();
    auto interval = config.GetDuration("save_interval");
    if (!interval.ok()) return interval.status();
    save_interval_ = *interval;
    llmesh::rag::EnginePoolOptions engines;
    engines.gateway = config.GetString("gateway");
    if (engines.gateway.empty()) engines.targets = config.GetList("engine");
    if (engines.gateway.empty() && engines.targets.empty())
      return absl::InvalidArgumentError("engine: at least one target (or set gateway)");
    auto refresh = config.GetDuration("engine_refresh");
    if (!refresh.ok()) return refresh.status();
    if (*refresh < absl::Milliseconds(100)) return absl::InvalidArgumentError("engine_refresh must be >= 100ms");
    engines.refresh = *refresh;
    downstream_ = std::make_unique<llmesh::rag::Downstream>(std::move(engines), config.GetString("tokenizer"), *timeout);
    pool_ = std::make_unique<llmesh::WorkPool>(static_cast<int>(v[7]), static_cast<size_t>(v[8]));
    service_ = std::make_unique<llmesh::rag::RagServiceImpl>(*downstream_, *pool_, options_.collection.retry);
    runner.AddService(service_.get(), llmesh::v1::RagService::service_full_name());
    return absl::OkStatus();
  }

  absl::Status Started(llmesh::rpc::ServerRunner& runner) override {
    downstream_->engines().Start();
    auto rag = Rag::Open(options_);
    if (!rag.ok()) return rag.status();
    rag_ = std::move(*rag);
    service_->set_rag(rag_.get());
    saver_ = std::thread([this] { SaveLoop(); });
    spdlog::info("event=storage_open data_dir={}", options_.data_dir);
    runner.SetServing(true);
    return absl::OkStatus();
  }

  void Stopping() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    if (saver_.joinable()) saver_.join();
    if (pool_) pool_->Stop();
    if (downstream_) downstream_->engines().Stop();
    if (rag_) {
      auto st = rag_->SaveAll();
      spdlog::info("event=indexes_saved ok={}", st.ok());
    }
  }

 private:
  void SaveLoop() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, absl::ToChronoMilliseconds(save_interval_), [this] { return stopping_; })) {
      lock.unlock();
      (void)rag_->SaveAll();
      lock.lock();
    }
  }

  llmesh::rag::RagOptions options_;
  absl::Duration save_interval_;
  std::unique_ptr<llmesh::rag::Downstream> downstream_;
  std::unique_ptr<llmesh::WorkPool> pool_;
  std::unique_ptr<llmesh::rag::RagServiceImpl> service_;
  std::unique_ptr<Rag> rag_;
  std::thread saver_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Module module;
  return llmesh::rpc::RunService(argc, argv, "rag", "127.0.0.1:50060", module);
}
