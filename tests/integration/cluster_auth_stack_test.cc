// The cluster credential on a real stack (processes on 127.0.0.1, the token
// from LLMESH_CLUSTER_TOKEN as deployments set it): a stranger who reaches the
// gateway's port cannot register, heartbeat or deregister workers, and cannot
// call the internal services; routing is unchanged. Before, a stranger's fake
// engine took over the users' requests.
#include <gtest/gtest.h>

#include "gateway_stack.h"
#include "llmesh/rpc/cluster_auth.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"
#include "stack_probe.h"

namespace llmesh::testing {
namespace {

// A channel that sends no cluster token (nor anything else of ours).
std::shared_ptr<grpc::Channel> StrangerChannel(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx->AddMetadata(rpc::kClusterTokenKey, token);
  return ctx;
}

std::string ReadLog(const Service& s) {
  std::ifstream f(s.log);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool GreedyChatWorks(v1::Gateway::Stub& stub) {
  v1::ChatRequest req;
  req.set_model("stories260K");
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("Once upon a time");
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_max_tokens(8);
  auto ctx = Ctx();
  auto reader = stub.Chat(ctx.get(), req);
  v1::GatewayGenerateResponse r;
  int deltas = 0;
  while (reader->Read(&r)) deltas += !r.text_delta().empty();
  return reader->Finish().ok() && deltas > 0;
}

TEST(ClusterAuthStackTest, StrangersCannotTouchTheRegistryOrInternalServices) {
  ASSERT_FALSE(rpc::ClusterToken().empty()) << "the test support gives every stack a token";
  GatewayStack stack;
  ASSERT_TRUE(stack.Start({"--model-dir", ModelDir()}).ok());
  auto engine = stack.AddEngine();
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE(stack.WaitForWorkers(1).ok());
  const std::string real = (*engine)->address();

  auto registry = v1::WorkerRegistry::NewStub(StrangerChannel(stack.gateway.address()));
  v1::RegisterWorkerRequest reg;
  reg.set_address("127.0.0.1:1");  // the stranger's "engine"
  reg.add_models("stories260K");
  v1::RegisterWorkerResponse reg_resp;
  EXPECT_EQ(registry->Register(Ctx().get(), reg, &reg_resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(registry->Register(Ctx(std::string(64, 'f')).get(), reg, &reg_resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::HeartbeatRequest hb;
  hb.set_address("127.0.0.1:1");
  hb.add_models("stories260K");
  v1::HeartbeatResponse hb_resp;
  EXPECT_EQ(registry->Heartbeat(Ctx().get(), hb, &hb_resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  v1::DeregisterWorkerRequest dereg;
  dereg.set_address(real);
  v1::DeregisterWorkerResponse dereg_resp;
  EXPECT_EQ(registry->Deregister(Ctx().get(), dereg, &dereg_resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // The worker table is as it was: the real engine, alone, serves the users.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // past a heartbeat
  EXPECT_EQ(stack.Workers(), 1);
  int64_t served = EngineStatsNow(real).requests_total();
  ASSERT_TRUE(GreedyChatWorks(*stack.stub));
  EXPECT_EQ(EngineStatsNow(real).requests_total(), served + 1);
  EXPECT_NE(ReadLog(stack.gateway).find("event=unauthenticated"), std::string::npos);

  // Internal services refuse strangers too, but still answer health probes.
  auto eng = v1::EngineService::NewStub(StrangerChannel(real));
  v1::EngineStats stats;
  EXPECT_EQ(eng->GetStats(Ctx().get(), v1::GetStatsRequest(), &stats).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::GenerateRequest gen;
  gen.set_model("stories260K");
  gen.add_prompt_token_ids(1);
  auto gen_ctx = Ctx();
  auto reader = eng->Generate(gen_ctx.get(), gen);
  v1::GenerateResponse gen_resp;
  EXPECT_FALSE(reader->Read(&gen_resp));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto tok = v1::TokenizerService::NewStub(StrangerChannel(stack.tokenizer.address()));
  v1::TokenizeRequest treq;
  treq.set_model("stories260K");
  treq.set_text("hello");
  v1::TokenizeResponse tresp;
  EXPECT_EQ(tok->Tokenize(Ctx().get(), treq, &tresp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(tok->Tokenize(Ctx(rpc::ClusterToken()).get(), treq, &tresp).ok());
  EXPECT_EQ(*HealthStatus(real), "SERVING");
  EXPECT_EQ(*HealthStatus(stack.tokenizer.address()), "SERVING");
}

// An engine started with another token cannot join: the gateway refuses its
// registration, and routes nothing to it.
TEST(ClusterAuthStackTest, AnEngineWithTheWrongTokenCannotRegister) {
  GatewayStack stack;
  ASSERT_TRUE(stack.Start({"--model-dir", ModelDir()}).ok());
  auto wrong = stack.AddEngine({"--cluster-token", std::string(64, '0')});
  ASSERT_TRUE(wrong.ok());
  ASSERT_TRUE(WaitForServing((*wrong)->address(), absl::Seconds(30)).ok());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(stack.Workers(), 0);
  ASSERT_TRUE(stack.AddEngine().ok());
  EXPECT_TRUE(stack.WaitForWorkers(1).ok());
}

}  // namespace
}  // namespace llmesh::testing
