// CallbackThreadPark: parks gRPC's callback threads down to the number kept,
// callbacks still run on the one left, and Release lets the others go.
#include "llmesh/rpc/callback_threads.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/server.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"

namespace llmesh::rpc {
namespace {

// A callback service, so the process has gRPC's callback threads.
class Echo : public v1::TokenizerService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx, const v1::TokenizeRequest* req,
                                     v1::TokenizeResponse* resp) override {
    resp->add_token_ids(static_cast<int32_t>(req->text().size()));
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

// Many callback calls at once all complete with the threads left.
void ManyCallsComplete(const std::string& address) {
  auto stub = v1::TokenizerService::NewStub(CreateChannel(address));
  constexpr int kCalls = 64;
  struct Call {
    grpc::ClientContext ctx;
    v1::TokenizeRequest req;
    v1::TokenizeResponse resp;
  };
  std::vector<std::unique_ptr<Call>> calls;
  std::mutex mu;
  std::condition_variable cv;
  int ok = 0, done = 0;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::make_unique<Call>());
    Call& c = *calls.back();
    c.req.set_text(std::string(i, 'x'));
    stub->async()->Tokenize(&c.ctx, &c.req, &c.resp, [&, i](grpc::Status st) {
      std::lock_guard lock(mu);
      if (st.ok() && calls[i]->resp.token_ids(0) == i) ++ok;
      ++done;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done == kCalls; }));
  EXPECT_EQ(ok, kCalls);
}

TEST(CallbackThreadParkTest, ParksDownToTheKeptThreadsWhichStillServeEveryCallback) {
  Echo echo;
  ServerOptions opts;
  ServerRunner runner(opts);
  runner.AddService(&echo, v1::TokenizerService::service_full_name());
  ASSERT_TRUE(runner.Start().ok());
  // gRPC starts max(2, cores / 2); they name themselves once running.
  int threads = CountCallbackThreads();
  for (int i = 0; i < 200 && threads < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    threads = CountCallbackThreads();
  }
  ASSERT_GE(threads, 2);
  {
    auto park = CallbackThreadPark::Start(*runner.server(), 1);
    EXPECT_EQ(park->parked(), threads - 1);
    ManyCallsComplete(runner.address());
    park->Release();
    ManyCallsComplete(runner.address());
  }
  EXPECT_EQ(CountCallbackThreads(), threads);
  // Keeping as many as there are parks none.
  auto none = CallbackThreadPark::Start(*runner.server(), threads);
  EXPECT_EQ(none->parked(), 0);
  none.reset();
  runner.Shutdown();
}

}  // namespace
}  // namespace llmesh::rpc
