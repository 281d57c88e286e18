// The gateway's proxies to agent-svc and rag-svc, in-process: the gateway's
// gRPC service and HTTP server on 127.0.0.1:0, in front of fake AgentService
// and RagService implementations that record what reached them. A second
// gateway points at an address where nothing listens.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "grpc_service.h"
#include "httplib.h"
#include "http_server.h"
#include "llmesh/rpc/channel.h"
#include "nlohmann/json.hpp"
#include "worker_pool.h"

namespace llmesh::gateway {
namespace {

using json = nlohmann::json;

const char kKey[] = "proxy-key";

std::string Meta(const grpc::ServerContext* ctx, const char* key) {
  auto it = ctx->client_metadata().find(key);
  return it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
}

v1::AgentStep Step(v1::AgentStepKind kind, int n, const std::string& session) {
  v1::AgentStep s;
  s.set_kind(kind);
  s.set_step(n);
  s.set_session_id(session);
  return s;
}

// Input "fail": FAILED_PRECONDITION; "hang": one step, then waits to be cancelled.
class FakeAgent final : public v1::AgentService::Service {
 public:
  grpc::Status Run(grpc::ServerContext* ctx, const v1::AgentRunRequest* req,
                   grpc::ServerWriter<v1::AgentStep>* writer) override {
    {
      std::lock_guard lock(mu);
      last = *req;
      request_id = Meta(ctx, "x-request-id");
      deadline = ctx->deadline();
      ++runs;
    }
    if (req->input() == "fail") return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "unknown tool 'nope'");
    const std::string session = "s-" + req->input();
    if (req->input() == "limit") {  // agent-svc ends the run itself: ERROR, USAGE, then its status
      v1::AgentStep error = Step(v1::AGENT_STEP_KIND_ERROR, 1, session);
      error.set_text("model call failed: gateway 127.0.0.1:50050: max_tokens (1024) exceeds the context");
      writer->Write(error);
      writer->Write(Step(v1::AGENT_STEP_KIND_USAGE, 1, session));
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "gateway 127.0.0.1:50050: max_tokens (1024) exceeds the context");
    }
    if (req->input() == "broken") {  // a step, then agent-svc fails without ending the run
      writer->Write(Step(v1::AGENT_STEP_KIND_THOUGHT, 1, session));
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "engine ipv4:10.0.0.7:50052: connection reset");
    }
    if (req->input() == "hang") {
      writer->Write(Step(v1::AGENT_STEP_KIND_THOUGHT, 0, session));
      while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::lock_guard lock(mu);
      saw_cancel = true;
      cv.notify_all();
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    v1::AgentStep thought = Step(v1::AGENT_STEP_KIND_THOUGHT, 0, session);
    thought.set_text("I should add.");
    v1::AgentStep call = Step(v1::AGENT_STEP_KIND_TOOL_CALL, 1, session);
    call.set_tool_name("calculator");
    call.set_tool_call_id("c1");
    call.set_arguments_json(R"({"expression":"2+2"})");
    v1::AgentStep result = Step(v1::AGENT_STEP_KIND_TOOL_RESULT, 1, session);
    result.set_tool_name("calculator");
    result.set_tool_call_id("c1");
    result.set_text("4");
    v1::AgentStep answer = Step(v1::AGENT_STEP_KIND_FINAL_ANSWER, 2, session);
    answer.set_text("It is 4.");
    v1::AgentStep usage = Step(v1::AGENT_STEP_KIND_USAGE, 2, session);
    usage.mutable_usage()->set_total_tokens(42);
    for (const auto& s : {thought, call, result, answer, usage})
      if (!writer->Write(s)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::condition_variable cv;
  v1::AgentRunRequest last;
  std::string request_id;
  std::chrono::system_clock::time_point deadline;
  int runs = 0;
  bool saw_cancel = false;
};

// Collection "missing": NOT_FOUND.
class FakeRag final : public v1::RagService::Service {
 public:
  grpc::Status Query(grpc::ServerContext* ctx, const v1::QueryRequest* req, v1::QueryResponse* resp) override {
    {
      std::lock_guard lock(mu);
      last = *req;
      request_id = Meta(ctx, "x-request-id");
    }
    if (req->collection() == "missing") return grpc::Status(grpc::StatusCode::NOT_FOUND, "collection 'missing' not found");
    for (int i = 0; i < req->top_k() && i < 3; ++i) {
      auto* r = resp->add_results();
      r->set_chunk_id("d" + std::to_string(i) + "#0");
      r->set_document_id("d" + std::to_string(i));
      r->set_text("passage " + std::to_string(i) + " about " + req->query());
      r->set_score(1.0 / (i + 1));
    }
    return grpc::Status::OK;
  }
  grpc::Status CreateCollection(grpc::ServerContext*, const v1::CreateCollectionRequest* req,
                                v1::Collection* resp) override {
    resp->set_name(req->name());
    resp->set_embedding_model(req->embedding_model());
    return grpc::Status::OK;
  }

  std::mutex mu;
  v1::QueryRequest last;
  std::string request_id;
};

// One gateway (gRPC + HTTP) over the given rag / agent addresses.
struct Gateway {
  Gateway(const std::string& backends, const ApiKeys& keys) : router(RouterOptions{}), pool({}, router), admission(4, 4) {
    gw.pool = &pool;
    gw.router = &router;
    gw.admission = &admission;
    gw.metrics = &metrics;
    gw.tokenizer = v1::TokenizerService::NewStub(rpc::CreateChannel(backends));
    gw.rag = v1::RagService::NewStub(rpc::CreateChannel(backends));
    gw.agent = v1::AgentService::NewStub(rpc::CreateChannel(backends));
    gw.default_model = "default-model";
    gw.request_timeout = absl::Seconds(30);
    service = std::make_unique<GatewayServiceImpl>(gw, keys);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service.get());
    server = b.BuildAndStart();
    HttpOptions ho;
    ho.listen = "127.0.0.1:0";
    ho.threads = 8;
    http = std::make_unique<HttpServer>(ho, gw, keys);
    EXPECT_TRUE(http->Start().ok());
    stub = v1::Gateway::NewStub(rpc::CreateChannel("127.0.0.1:" + std::to_string(port)));
  }
  ~Gateway() {
    http->Stop();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  Router router;
  WorkerPool pool;
  Admission admission;
  GatewayMetrics metrics;
  GatewayContext gw;
  std::unique_ptr<GatewayServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<v1::Gateway::Stub> stub;
  int port = 0;
};

class ProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    agent_ = new FakeAgent();
    rag_ = new FakeRag();
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(agent_);
    b.RegisterService(rag_);
    backends_ = b.BuildAndStart().release();
    keys_ = new ApiKeys({kKey});
    gateway_ = new Gateway("127.0.0.1:" + std::to_string(port), *keys_);
    // Nothing listens on port 1.
    down_ = new Gateway("127.0.0.1:1", *keys_);
  }
  static void TearDownTestSuite() {
    delete down_;
    delete gateway_;
    backends_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    delete backends_;
    delete rag_;
    delete agent_;
    delete keys_;
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& key = kKey, int seconds = 20) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    if (!key.empty()) ctx->AddMetadata("authorization", std::string("Bearer ") + key);
    return ctx;
  }
  static httplib::Client Http(const Gateway& g) {
    httplib::Client c("127.0.0.1", g.http->port());
    c.set_read_timeout(20, 0);
    return c;
  }
  static httplib::Headers Auth() { return {{"Authorization", std::string("Bearer ") + kKey}}; }

  struct Run {
    grpc::Status status;
    std::vector<v1::AgentStep> steps;
  };
  static Run AgentRun(Gateway& g, const v1::AgentRunRequest& req, std::unique_ptr<grpc::ClientContext> ctx) {
    Run out;
    auto reader = g.stub->AgentRun(ctx.get(), req);
    v1::AgentStep s;
    while (reader->Read(&s)) out.steps.push_back(s);
    out.status = reader->Finish();
    return out;
  }

  static inline FakeAgent* agent_ = nullptr;
  static inline FakeRag* rag_ = nullptr;
  static inline grpc::Server* backends_ = nullptr;
  static inline ApiKeys* keys_ = nullptr;
  static inline Gateway* gateway_ = nullptr;
  static inline Gateway* down_ = nullptr;
};

TEST_F(ProxyTest, AgentRunStreamsEveryStepInOrder) {
  v1::AgentRunRequest req;
  req.set_input("add");
  req.add_tools("calculator");
  req.set_tool_choice("required");
  req.mutable_limits()->set_max_steps(3);
  auto ctx = Ctx();
  ctx->AddMetadata("x-request-id", "rid-agent-1");
  Run run = AgentRun(*gateway_, req, std::move(ctx));
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_EQ(run.steps.size(), 5u);
  EXPECT_EQ(run.steps[0].kind(), v1::AGENT_STEP_KIND_THOUGHT);
  EXPECT_EQ(run.steps[1].kind(), v1::AGENT_STEP_KIND_TOOL_CALL);
  EXPECT_EQ(run.steps[1].arguments_json(), R"({"expression":"2+2"})");
  EXPECT_EQ(run.steps[2].text(), "4");
  EXPECT_EQ(run.steps[3].text(), "It is 4.");
  EXPECT_EQ(run.steps[4].usage().total_tokens(), 42);
  EXPECT_EQ(run.steps[4].session_id(), "s-add");
  std::lock_guard lock(agent_->mu);
  // The request reaches agent-svc whole (no model: agent-svc picks the
  // session's, else its default), with the request id and a deadline.
  EXPECT_EQ(agent_->last.model(), "");
  EXPECT_EQ(agent_->last.tool_choice(), "required");
  EXPECT_EQ(agent_->last.limits().max_steps(), 3);
  EXPECT_EQ(agent_->request_id, "rid-agent-1");
  EXPECT_LT(agent_->deadline, std::chrono::system_clock::now() + std::chrono::seconds(25));
}

TEST_F(ProxyTest, AgentRunErrorsAndAuth) {
  v1::AgentRunRequest req;
  req.set_input("fail");
  Run failed = AgentRun(*gateway_, req, Ctx());
  EXPECT_EQ(failed.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(failed.status.error_message(), "unknown tool 'nope'");

  req.set_input("add");
  int runs_before;
  {
    std::lock_guard lock(agent_->mu);
    runs_before = agent_->runs;
  }
  Run anon = AgentRun(*gateway_, req, Ctx("wrong"));
  EXPECT_EQ(anon.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(anon.steps.empty());
  {
    std::lock_guard lock(agent_->mu);
    EXPECT_EQ(agent_->runs, runs_before);  // never reached agent-svc
  }

  Run down = AgentRun(*down_, req, Ctx());
  EXPECT_EQ(down.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(down.status.error_message().find("agent service (Run) unavailable"), std::string::npos)
      << down.status.error_message();
}

// Issue #14: a run that fails after its first steps ends with an ERROR step
// (its own, or one the gateway adds), and no error names an internal address.
TEST_F(ProxyTest, AgentRunFailingAfterStepsEndsWithAnErrorStepAndNoAddresses) {
  v1::AgentRunRequest req;
  req.set_input("limit");
  Run limit = AgentRun(*gateway_, req, Ctx());
  EXPECT_EQ(limit.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(limit.status.error_message(), "gateway <address>: max_tokens (1024) exceeds the context");
  ASSERT_EQ(limit.steps.size(), 2u);  // agent-svc's own ERROR: none added
  EXPECT_EQ(limit.steps[0].kind(), v1::AGENT_STEP_KIND_ERROR);
  EXPECT_EQ(limit.steps[0].text(), "model call failed: gateway <address>: max_tokens (1024) exceeds the context");

  req.set_input("broken");
  Run broken = AgentRun(*gateway_, req, Ctx());
  EXPECT_EQ(broken.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(broken.status.error_message().find("10.0.0.7"), std::string::npos) << broken.status.error_message();
  ASSERT_EQ(broken.steps.size(), 2u);
  EXPECT_EQ(broken.steps[1].kind(), v1::AGENT_STEP_KIND_ERROR);
  EXPECT_EQ(broken.steps[1].session_id(), "s-broken");
  EXPECT_EQ(broken.steps[1].text(), broken.status.error_message());

  // Over HTTP: a 200 either way, whole or streamed, the error step last of the run.
  auto cli = Http(*gateway_);
  for (const char* input : {"limit", "broken"}) {
    auto whole = cli.Post("/v1/agents/run", Auth(), json{{"input", input}}.dump(), "application/json");
    ASSERT_TRUE(whole);
    ASSERT_EQ(whole->status, 200) << whole->body;
    EXPECT_EQ(whole->body.find("127.0.0.1"), std::string::npos) << whole->body;
    EXPECT_EQ(whole->body.find("10.0.0.7"), std::string::npos) << whole->body;
    json steps = json::parse(whole->body)["steps"];
    ASSERT_GE(steps.size(), 2u) << whole->body;
    bool error_step = false;
    for (const auto& s : steps) error_step = error_step || s["kind"] == "error";
    EXPECT_TRUE(error_step) << whole->body;

    auto sse = cli.Post("/v1/agents/run", Auth(), json{{"input", input}, {"stream", true}}.dump(),
                        "application/json");
    ASSERT_TRUE(sse);
    ASSERT_EQ(sse->status, 200) << sse->body;
    EXPECT_EQ(sse->body.find("127.0.0.1"), std::string::npos) << sse->body;
    EXPECT_NE(sse->body.find(R"("kind":"error")"), std::string::npos) << sse->body;
    EXPECT_EQ(sse->body.find(R"("error":{)"), std::string::npos) << sse->body;  // no OpenAI error event
    EXPECT_NE(sse->body.find("data: [DONE]"), std::string::npos) << sse->body;
  }
}

TEST_F(ProxyTest, CancellingAgentRunCancelsTheRunInAgentSvc) {
  {
    std::lock_guard lock(agent_->mu);
    agent_->saw_cancel = false;
  }
  v1::AgentRunRequest req;
  req.set_input("hang");
  auto ctx = Ctx();
  auto reader = gateway_->stub->AgentRun(ctx.get(), req);
  v1::AgentStep s;
  ASSERT_TRUE(reader->Read(&s));  // the run is under way
  ctx->TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  std::unique_lock lock(agent_->mu);
  EXPECT_TRUE(agent_->cv.wait_for(lock, std::chrono::seconds(10), [] { return agent_->saw_cancel; }));
}

TEST_F(ProxyTest, HttpAgentRunStreamsStepsAsSse) {
  auto cli = Http(*gateway_);
  auto r = cli.Post("/v1/agents/run", Auth(), R"({"input":"add","tools":["calculator"],"stream":true})",
                    "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  std::vector<json> events;
  size_t pos = 0;
  bool done = false;
  while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
    size_t end = r->body.find("\n\n", pos);
    std::string payload = r->body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (payload == "[DONE]") {
      done = true;
      break;
    }
    events.push_back(json::parse(payload));
  }
  EXPECT_TRUE(done);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0]["object"], "agent.step");
  EXPECT_EQ(events[1]["kind"], "tool_call");
  EXPECT_EQ(events[1]["tool_name"], "calculator");
  EXPECT_EQ(events[3]["kind"], "final_answer");
  EXPECT_EQ(events[4]["usage"]["total_tokens"], 42);
  std::lock_guard lock(agent_->mu);
  EXPECT_EQ(agent_->last.tools(0), "calculator");
  EXPECT_EQ(agent_->request_id, r->get_header_value("x-request-id"));
}

TEST_F(ProxyTest, HttpAgentRunWholeAndErrors) {
  auto cli = Http(*gateway_);
  auto whole = cli.Post("/v1/agents/run", Auth(), R"({"input":"add"})", "application/json");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  json j = json::parse(whole->body);
  EXPECT_EQ(j["object"], "agent.run");
  EXPECT_EQ(j["output"], "It is 4.");
  EXPECT_EQ(j["session_id"], "s-add");
  EXPECT_EQ(j["steps"].size(), 5u);

  auto bad = cli.Post("/v1/agents/run", Auth(), R"({"input":""})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "input");
  auto failed = cli.Post("/v1/agents/run", Auth(), R"({"input":"fail","stream":true})", "application/json");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 400);  // FAILED_PRECONDITION, known before any step
  EXPECT_EQ(json::parse(failed->body)["error"]["message"], "unknown tool 'nope'");
  auto anon = cli.Post("/v1/agents/run", R"({"input":"add"})", "application/json");
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->status, 401);
  auto down = Http(*down_).Post("/v1/agents/run", Auth(), R"({"input":"add"})", "application/json");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 503);
}

TEST_F(ProxyTest, QueryIsProxiedOverGrpcAndHttp) {
  v1::QueryRequest req;
  req.set_collection("docs");
  req.set_query("cats");
  req.set_top_k(2);
  v1::QueryResponse resp;
  auto ctx = Ctx();
  ctx->AddMetadata("x-request-id", "rid-query-1");
  grpc::Status st = gateway_->stub->Query(ctx.get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.results_size(), 2);
  EXPECT_EQ(resp.results(0).chunk_id(), "d0#0");
  {
    std::lock_guard lock(rag_->mu);
    EXPECT_EQ(rag_->request_id, "rid-query-1");
  }
  v1::QueryResponse missing;
  req.set_collection("missing");
  EXPECT_EQ(gateway_->stub->Query(Ctx().get(), req, &missing).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(gateway_->stub->Query(Ctx("").get(), req, &missing).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(down_->stub->Query(Ctx().get(), req, &missing).error_code(), grpc::StatusCode::UNAVAILABLE);
  v1::CreateCollectionRequest create;
  create.set_name("docs2");
  create.set_embedding_model("stories260K");
  v1::Collection c;
  ASSERT_TRUE(gateway_->stub->CreateCollection(Ctx().get(), create, &c).ok());
  EXPECT_EQ(c.name(), "docs2");

  auto cli = Http(*gateway_);
  auto r = cli.Post("/v1/rag/query", Auth(),
                    R"({"collection":"docs","query":"dogs","top_k":3,"mode":"dense","filters":{"lang":["en","fr"]}})",
                    "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_EQ(j["data"].size(), 3u);
  EXPECT_EQ(j["data"][2]["text"], "passage 2 about dogs");
  {
    std::lock_guard lock(rag_->mu);
    EXPECT_EQ(rag_->last.mode(), v1::RETRIEVAL_MODE_DENSE);
    ASSERT_EQ(rag_->last.filters_size(), 1);
    EXPECT_EQ(rag_->last.filters(0).values_size(), 2);
  }
  auto nf = cli.Post("/v1/rag/query", Auth(), R"({"collection":"missing","query":"x"})", "application/json");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  auto bad = cli.Post("/v1/rag/query", Auth(), R"({"collection":"docs","query":"x","top_k":0})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "top_k");
  auto down = Http(*down_).Post("/v1/rag/query", Auth(), R"({"collection":"docs","query":"x"})", "application/json");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 503);
}

TEST_F(ProxyTest, RagChatBodiesAreCheckedBeforeAnyWork) {
  auto cli = Http(*gateway_);
  auto no_collection =
      cli.Post("/v1/rag/chat", Auth(), R"({"messages":[{"role":"user","content":"hi"}]})", "application/json");
  ASSERT_TRUE(no_collection);
  EXPECT_EQ(no_collection->status, 400);
  EXPECT_EQ(json::parse(no_collection->body)["error"]["param"], "collection");
  auto no_question = cli.Post("/v1/rag/chat", Auth(),
                              R"({"collection":"docs","messages":[{"role":"system","content":"hi"}]})",
                              "application/json");
  ASSERT_TRUE(no_question);
  EXPECT_EQ(no_question->status, 400);
  EXPECT_EQ(json::parse(no_question->body)["error"]["param"], "messages");
}

}  // namespace
}  // namespace llmesh::gateway
