// ServerRunner: health, graceful drain on shutdown, cancellation at the grace deadline.
#include "llmesh/rpc/server.h"

#include <thread>

#include <gtest/gtest.h>

#include "llmesh/rpc/channel.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"
#include "service_process.h"

namespace llmesh::rpc {
namespace {

using v1::TokenizeRequest;
using v1::TokenizeResponse;

// Tokenize sleeps for the number of milliseconds in the request text, then
// answers; it gives up early when the call is cancelled, as real handlers must.
class SlowService : public v1::TokenizerService::CallbackService {
 public:
  ~SlowService() override {
    for (auto& t : threads_) t.join();
  }
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx, const TokenizeRequest* req,
                                     TokenizeResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    int ms = std::stoi(req->text());
    std::lock_guard lock(mu_);
    threads_.emplace_back([=] {
      auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      while (std::chrono::steady_clock::now() < end) {
        if (ctx->IsCancelled()) {
          reactor->Finish(grpc::Status::CANCELLED);
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      resp->add_token_ids(ms);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

ServerOptions Opts(const std::string& listen, absl::Duration grace = absl::Seconds(5)) {
  ServerOptions o;
  o.listen = listen;
  o.shutdown_grace = grace;
  return o;
}

grpc::Status CallTokenize(const std::string& address, int ms) {
  auto stub = v1::TokenizerService::NewStub(CreateChannel(address));
  auto ctx = ContextWithTimeout(absl::Seconds(10));
  TokenizeRequest req;
  req.set_text(std::to_string(ms));
  TokenizeResponse resp;
  return stub->Tokenize(ctx.get(), req, &resp);
}

TEST(ServerTest, ReportsHealthPerServiceAndOverall) {
  SlowService service;
  ServerRunner runner(Opts("127.0.0.1:0"));
  runner.AddService(&service, v1::TokenizerService::service_full_name());
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_GT(runner.port(), 0);
  EXPECT_EQ(*testing::HealthStatus(runner.address()), "NOT_SERVING");
  runner.SetServing(true);
  EXPECT_EQ(*testing::HealthStatus(runner.address()), "SERVING");
  EXPECT_EQ(*testing::HealthStatus(runner.address(), "llmesh.v1.TokenizerService"), "SERVING");
  EXPECT_FALSE(testing::HealthStatus(runner.address(), "no.such.Service").ok());
}

TEST(ServerTest, ShutdownDrainsInFlightCallsAndRefusesNewOnes) {
  SlowService service;
  ServerRunner runner(Opts("127.0.0.1:0", absl::Seconds(5)));
  runner.AddService(&service, v1::TokenizerService::service_full_name());
  ASSERT_TRUE(runner.Start().ok());
  runner.SetServing(true);
  std::string address = runner.address();

  grpc::Status in_flight;
  std::thread client([&] { in_flight = CallTokenize(address, 600); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto start = absl::Now();
  runner.Shutdown();
  auto took = absl::Now() - start;
  client.join();

  EXPECT_TRUE(in_flight.ok()) << in_flight.error_message();
  EXPECT_GE(took, absl::Milliseconds(300));  // it waited for the call
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_FALSE(CallTokenize(address, 1).ok());
}

TEST(ServerTest, ShutdownCancelsWhatOutlivesTheGracePeriod) {
  SlowService service;
  ServerRunner runner(Opts("127.0.0.1:0", absl::Milliseconds(200)));
  runner.AddService(&service, v1::TokenizerService::service_full_name());
  ASSERT_TRUE(runner.Start().ok());
  runner.SetServing(true);
  std::string address = runner.address();

  grpc::Status in_flight;
  std::thread client([&] { in_flight = CallTokenize(address, 8000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto start = absl::Now();
  runner.Shutdown();
  auto took = absl::Now() - start;
  client.join();

  EXPECT_FALSE(in_flight.ok());
  EXPECT_LT(took, absl::Seconds(3));
}

TEST(ServerTest, PortInUseIsAClearError) {
  SlowService service;
  ServerRunner first(Opts("127.0.0.1:0"));
  first.AddService(&service, v1::TokenizerService::service_full_name());
  ASSERT_TRUE(first.Start().ok());
  SlowService service2;
  ServerRunner second(Opts(first.address()));
  second.AddService(&service2, v1::TokenizerService::service_full_name());
  auto st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot listen"), absl::string_view::npos);
}

}  // namespace
}  // namespace llmesh::rpc
