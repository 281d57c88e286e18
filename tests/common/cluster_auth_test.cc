// The cluster credential: a server with a token refuses calls without it
// before any handler runs; health and public services stay open; clients made
// by rpc::CreateChannel present the process's token.
#include "llmesh/rpc/cluster_auth.h"

#include <stdlib.h>

#include <atomic>
#include <fstream>

#include <gtest/gtest.h>

#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/health.h"
#include "llmesh/rpc/server.h"
#include "llmesh/v1/gateway.grpc.pb.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"

namespace llmesh::rpc {
namespace {

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

// Counts the calls that reach it: a refused call must not.
class CountingTokenizer : public v1::TokenizerService::CallbackService {
 public:
  std::atomic<int> calls{0};
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx, const v1::TokenizeRequest*,
                                     v1::TokenizeResponse* resp) override {
    ++calls;
    resp->add_token_ids(7);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

class CountingGateway : public v1::Gateway::CallbackService {
 public:
  std::atomic<int> calls{0};
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx, const v1::GatewayListModelsRequest*,
                                       v1::GatewayListModelsResponse*) override {
    ++calls;
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

// A channel that adds exactly the metadata given (no process token).
grpc::Status Tokenize(const std::string& address, const char* token) {
  auto stub = v1::TokenizerService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (token) ctx.AddMetadata(kClusterTokenKey, token);
  v1::TokenizeResponse resp;
  return stub->Tokenize(&ctx, v1::TokenizeRequest(), &resp);
}

class ClusterAuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.cluster_token = kToken;
    runner_ = std::make_unique<ServerRunner>(o);
    runner_->AddService(&tokenizer_, v1::TokenizerService::service_full_name());
    runner_->AddService(&gateway_, v1::Gateway::service_full_name(), ServerRunner::Access::kPublic);
    ASSERT_TRUE(runner_->Start().ok());
    runner_->SetServing(true);
  }
  void TearDown() override { SetClusterToken(""); }

  CountingTokenizer tokenizer_;
  CountingGateway gateway_;
  std::unique_ptr<ServerRunner> runner_;
};

TEST_F(ClusterAuthServerTest, RefusesCallsWithoutTheTokenBeforeTheHandler) {
  grpc::Status none = Tokenize(runner_->address(), nullptr);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(none.error_message().find("cluster credential"), std::string::npos);
  EXPECT_EQ(Tokenize(runner_->address(), "0123456789abcdef0123456789abcdeX").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Tokenize(runner_->address(), "short").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Tokenize(runner_->address(), "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(tokenizer_.calls.load(), 0);

  EXPECT_TRUE(Tokenize(runner_->address(), kToken).ok());
  EXPECT_EQ(tokenizer_.calls.load(), 1);
}

TEST_F(ClusterAuthServerTest, HealthAndPublicServicesAreOpen) {
  auto raw = grpc::CreateChannel(runner_->address(), grpc::InsecureChannelCredentials());
  auto health = CheckHealth(*raw, "llmesh.v1.TokenizerService", absl::Seconds(5));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");

  auto stub = v1::Gateway::NewStub(raw);
  grpc::ClientContext ctx;
  v1::GatewayListModelsResponse resp;
  EXPECT_TRUE(stub->ListModels(&ctx, v1::GatewayListModelsRequest(), &resp).ok());
  EXPECT_EQ(gateway_.calls.load(), 1);
}

TEST_F(ClusterAuthServerTest, CreateChannelPresentsTheProcessToken) {
  auto call = [&] {
    auto stub = v1::TokenizerService::NewStub(CreateChannel(runner_->address()));
    auto ctx = ContextWithTimeout(absl::Seconds(5));
    v1::TokenizeResponse resp;
    return stub->Tokenize(ctx.get(), v1::TokenizeRequest(), &resp);
  };
  SetClusterToken("");
  EXPECT_EQ(call().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  SetClusterToken(kToken);
  EXPECT_TRUE(call().ok());
}

TEST(ClusterAuthPolicyTest, ComparesWholeTokens) {
  ClusterAuthPolicy policy(kToken, {});
  EXPECT_TRUE(policy.TokenMatches(kToken));
  EXPECT_FALSE(policy.TokenMatches(std::string(kToken) + "x"));
  EXPECT_FALSE(policy.TokenMatches(std::string(kToken).substr(1)));
  EXPECT_FALSE(policy.TokenMatches(""));
  EXPECT_TRUE(policy.IsOpen("/grpc.health.v1.Health/Check"));
  EXPECT_FALSE(policy.IsOpen("/llmesh.v1.WorkerRegistry/Register"));
  // Reflection describes a public API only.
  EXPECT_FALSE(policy.IsOpen("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  EXPECT_TRUE(ClusterAuthPolicy("", {}).IsOpen("/llmesh.v1.WorkerRegistry/Register"));
}

TEST(ClusterTokenFromEnvTest, ReadsAndValidates) {
  unsetenv("LLMESH_CLUSTER_TOKEN_FILE");
  setenv("LLMESH_CLUSTER_TOKEN", kToken, 1);
  EXPECT_EQ(*ClusterTokenFromEnv(), kToken);
  setenv("LLMESH_CLUSTER_TOKEN", "short", 1);
  EXPECT_EQ(ClusterTokenFromEnv().status().code(), absl::StatusCode::kInvalidArgument);
  setenv("LLMESH_CLUSTER_TOKEN", "has a space in the middle of it", 1);
  EXPECT_EQ(ClusterTokenFromEnv().status().code(), absl::StatusCode::kInvalidArgument);

  unsetenv("LLMESH_CLUSTER_TOKEN");
  std::string file = ::testing::TempDir() + "/cluster_token";
  std::ofstream(file) << kToken << "\n";
  setenv("LLMESH_CLUSTER_TOKEN_FILE", file.c_str(), 1);
  EXPECT_EQ(*ClusterTokenFromEnv(), kToken);  // the newline is not part of it
  setenv("LLMESH_CLUSTER_TOKEN_FILE", "/nonexistent/token", 1);
  EXPECT_FALSE(ClusterTokenFromEnv().ok());
  unsetenv("LLMESH_CLUSTER_TOKEN_FILE");
  EXPECT_EQ(*ClusterTokenFromEnv(), "");

  std::string a = GenerateClusterToken(), b = GenerateClusterToken();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace llmesh::rpc
