// A request in flight keeps its model alive past UnloadModel (and engine
// shutdown); when it finishes, the scheduler thread drops the last reference.
// That thread must not destroy the model: its destructor joins the thread.
// Before, this ended in std::terminate ("Resource deadlock avoided"), the
// engine's exit 134 in a SIGTERM drain under ASan.
#include <condition_variable>
#include <mutex>

#include <gtest/gtest.h>

#include "llmesh/engine/engine.h"

namespace llmesh::engine {
namespace {

// Holds the model, as the service's sinks do.
class HoldingSink : public GenerationSink {
 public:
  explicit HoldingSink(std::shared_ptr<LoadedModel> model, std::shared_ptr<bool> finished,
                       std::shared_ptr<std::mutex> mu, std::shared_ptr<std::condition_variable> cv)
      : model_(std::move(model)), finished_(std::move(finished)), mu_(std::move(mu)), cv_(std::move(cv)) {}
  void OnToken(int32_t, const SampleResult&) override {}
  void OnFinish(int32_t, FinishReason, const GenerationUsage&, const std::string&) override {
    std::lock_guard lock(*mu_);
    *finished_ = true;
    cv_->notify_all();
  }

 private:
  std::shared_ptr<LoadedModel> model_;
  std::shared_ptr<bool> finished_;
  std::shared_ptr<std::mutex> mu_;
  std::shared_ptr<std::condition_variable> cv_;
};

TEST(EngineUnloadTest, TheLastReferenceDroppedByTheSchedulerThreadIsSafe) {
  for (int round = 0; round < 3; ++round) {
    EngineConfig config;
    config.model_dir = std::string(LLMESH_SHARED_DIR) + "/models";
    config.n_threads = 1;
    Engine engine(config);
    ASSERT_TRUE(engine.LoadModel("stories260K", 0).ok());
    auto finished = std::make_shared<bool>(false);
    auto mu = std::make_shared<std::mutex>();
    auto cv = std::make_shared<std::condition_variable>();
    {
      auto model = engine.Get("stories260K");
      ASSERT_TRUE(model.ok());
      GenerationRequest req;
      req.prompt = {1, 403, 407};
      req.sampling.temperature = 0;
      req.max_tokens = 64;
      req.ignore_eos = true;
      auto sink = std::make_shared<HoldingSink>(*model, finished, mu, cv);
      ASSERT_TRUE((*model)->scheduler->Submit(req, sink).ok());
    }
    // Now only the scheduler holds the sink, and only the sink the model.
    ASSERT_TRUE(engine.UnloadModel("stories260K").ok());
    std::unique_lock lock(*mu);
    ASSERT_TRUE(cv->wait_for(lock, std::chrono::seconds(60), [&] { return *finished; }));
  }
  // The deferred destructions finish on their own threads.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

}  // namespace
}  // namespace llmesh::engine
