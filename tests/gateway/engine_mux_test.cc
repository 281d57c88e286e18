// The gateway's GenerateMux client (engine_mux.h) and its use by Generation,
// in-process against fake engine workers on 127.0.0.1:0: generations sharing
// a stream, cancel, deadlines the engine never answers, a stream that breaks,
// and a worker without GenerateMux (Generation falls back to Generate).
#include <condition_variable>
#include <mutex>
#include <thread>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include "engine_mux.h"
#include "generation.h"
#include "llmesh/rpc/channel.h"
#include "worker_pool.h"

namespace llmesh::gateway {
namespace {

// Tokens every fake generation streams (ids of stories260K's vocabulary).
const std::vector<int32_t> kTokens = {432, 383, 286};

v1::GenerateResponse Tokens(std::vector<int32_t> ids, v1::FinishReason finish) {
  v1::GenerateResponse r;
  for (int32_t id : ids) r.add_tokens()->set_token_id(id);
  r.set_finish_reason(finish);
  if (finish != v1::FINISH_REASON_UNSPECIFIED)
    r.mutable_usage()->set_completion_tokens(static_cast<int32_t>(ids.size()));
  return r;
}

// Generate streams kTokens. Subclasses add GenerateMux, whose behaviour the
// prompt's first id picks: 1 streams kTokens (two messages), 2 never answers,
// 3 ends with RESOURCE_EXHAUSTED, 4 breaks the whole stream (UNAVAILABLE).
class FakeEngine : public v1::EngineService::Service {
 public:
  grpc::Status ListModels(grpc::ServerContext*, const v1::ListModelsRequest*, v1::ListModelsResponse* resp) override {
    auto* m = resp->add_models();
    m->set_name("stories260K");
    m->set_n_ctx(512);
    m->set_loaded(true);
    return grpc::Status::OK;
  }
  grpc::Status Generate(grpc::ServerContext*, const v1::GenerateRequest*,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    {
      std::lock_guard lock(mu);
      ++generates;
    }
    writer->Write(Tokens({kTokens[0], kTokens[1]}, v1::FINISH_REASON_UNSPECIFIED));
    writer->Write(Tokens({kTokens[2]}, v1::FINISH_REASON_LENGTH));
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::condition_variable cv;
  int generates = 0;
  int streams = 0;
  std::vector<v1::GenerateMuxRequest> starts;
  std::vector<uint64_t> cancels;
};

class FakeMuxEngine : public FakeEngine {
 public:
  grpc::Status GenerateMux(grpc::ServerContext*,
                           grpc::ServerReaderWriter<v1::GenerateMuxResponse, v1::GenerateMuxRequest>* stream) override {
    {
      std::lock_guard lock(mu);
      ++streams;
    }
    v1::GenerateMuxRequest req;
    while (stream->Read(&req)) {
      {
        std::lock_guard lock(mu);
        if (req.has_start()) starts.push_back(req);
        if (req.cancel()) cancels.push_back(req.id());
      }
      cv.notify_all();
      if (!req.has_start()) continue;
      int32_t kind = req.start().prompt_token_ids(0);
      v1::GenerateMuxResponse out;
      if (kind == 1) {
        auto* e = out.add_events();
        e->set_id(req.id());
        *e->mutable_response() = Tokens({kTokens[0], kTokens[1]}, v1::FINISH_REASON_UNSPECIFIED);
        stream->Write(out);
        out.Clear();
        e = out.add_events();
        e->set_id(req.id());
        *e->mutable_response() = Tokens({kTokens[2]}, v1::FINISH_REASON_LENGTH);
        e->set_done(true);
        stream->Write(out);
      } else if (kind == 3) {
        auto* e = out.add_events();
        e->set_id(req.id());
        e->set_done(true);
        e->set_status_code(grpc::StatusCode::RESOURCE_EXHAUSTED);
        e->set_status_message("queue full");
        stream->Write(out);
      } else if (kind == 4) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker crashed");
      }
    }
    return grpc::Status::OK;
  }
};

struct Server {
  explicit Server(grpc::Service* service) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service);
    server = b.BuildAndStart();
    server->GetHealthCheckService()->SetServingStatus("llmesh.v1.EngineService", true);
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1)); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

// gRPC 1.51 shares one completion queue among callback-API channels and
// servers (the health service is one) and tears it down when the last of them
// goes; when the next test's channel brought it back at once, its poller
// thread now and then aborted on a refcount assertion (about 1 run in 200
// under load). A server that lives as long as the test binary keeps the queue
// up, as the gateway's own server does in production.
class KeepCallbackQueue : public ::testing::Environment {
 public:
  void SetUp() override {
    int port = 0;
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterCallbackGenericService(&generic_);  // a callback-API server
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    server_->Shutdown();
    server_.reset();  // now: at static destruction gRPC is gone
  }

 private:
  grpc::CallbackGenericService generic_;
  std::unique_ptr<grpc::Server> server_;
};
const auto* const kKeepCallbackQueue = ::testing::AddGlobalTestEnvironment(new KeepCallbackQueue);

// Records what one generation's listener heard.
class Recorder : public EngineMux::Listener {
 public:
  void OnMessage(v1::GenerateResponse msg) override {
    std::lock_guard lock(mu_);
    for (const auto& t : msg.tokens()) tokens.push_back(t.token_id());
    if (msg.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) finish = msg.finish_reason();
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(mu_);
    ++dones;
    this->status = status;
    cv_.notify_all();
  }
  bool WaitDone(absl::Duration timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return dones > 0; });
  }

  std::vector<int32_t> tokens;
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  int dones = 0;
  grpc::Status status;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

v1::GenerateRequest Req(int32_t kind) {
  v1::GenerateRequest r;
  r.set_model("stories260K");
  r.add_prompt_token_ids(kind);
  return r;
}

// A fake engine served on 127.0.0.1:0 and a mux to it, which ends its
// stream before the server goes: gRPC's callback threads must not outlive
// every server and channel while a call is still active.
template <typename Engine>
struct MuxToFake {
  MuxToFake()
      : server(&engine),
        mux(std::make_shared<EngineMux>(std::shared_ptr<v1::EngineService::Stub>(
            v1::EngineService::NewStub(rpc::CreateChannel(server.address()))))) {}
  ~MuxToFake() { mux->Close(absl::Seconds(5)); }

  Engine engine;
  Server server;
  std::shared_ptr<EngineMux> mux;
};

// Starts a generation of `kind` heard by `rec` and waits (5 s at most) for its end.
::testing::AssertionResult RunToEnd(EngineMux& mux, int32_t kind, absl::Time deadline,
                                    const std::shared_ptr<Recorder>& rec) {
  auto id = mux.Start(Req(kind), deadline, rec);
  if (!id.ok()) return ::testing::AssertionFailure() << "not started: " << id.status();
  if (!rec->WaitDone(absl::Seconds(5))) return ::testing::AssertionFailure() << "not ended within 5 s";
  return ::testing::AssertionSuccess();
}

template <typename Pred>
bool Eventually(FakeEngine& e, Pred pred) {
  std::unique_lock lock(e.mu);
  return e.cv.wait_for(lock, std::chrono::seconds(5), pred);
}

TEST(EngineMuxTest, GenerationsShareOneStreamAndEachEndsOnce) {
  MuxToFake<FakeMuxEngine> f;
  std::vector<std::shared_ptr<Recorder>> rec;
  for (int i = 0; i < 3; ++i) {
    rec.push_back(std::make_shared<Recorder>());
    ASSERT_TRUE(f.mux->Start(Req(1), absl::Now() + absl::Seconds(30), rec.back()).ok());
  }
  for (auto& r : rec) {
    ASSERT_TRUE(r->WaitDone(absl::Seconds(5)));
    EXPECT_TRUE(r->status.ok()) << r->status.error_message();
    EXPECT_EQ(r->tokens, kTokens);
    EXPECT_EQ(r->finish, v1::FINISH_REASON_LENGTH);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::lock_guard lock(f.engine.mu);
  EXPECT_EQ(f.engine.streams, 1);
  ASSERT_EQ(f.engine.starts.size(), 3u);
  EXPECT_GT(f.engine.starts[0].timeout_ms(), 20000);  // the deadline travels with the start
  for (auto& r : rec) EXPECT_EQ(r->dones, 1);
}

TEST(EngineMuxTest, AnEngineErrorEndsOnlyThatGeneration) {
  MuxToFake<FakeMuxEngine> f;
  auto failed = std::make_shared<Recorder>(), fine = std::make_shared<Recorder>();
  ASSERT_TRUE(f.mux->Start(Req(3), absl::InfiniteFuture(), failed).ok());
  ASSERT_TRUE(f.mux->Start(Req(1), absl::InfiniteFuture(), fine).ok());
  ASSERT_TRUE(failed->WaitDone(absl::Seconds(5)));
  EXPECT_EQ(failed->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(fine->WaitDone(absl::Seconds(5)));
  EXPECT_TRUE(fine->status.ok());
  EXPECT_EQ(fine->tokens, kTokens);
}

TEST(EngineMuxTest, CancelReachesTheEngineAndTheListenerHearsNoMore) {
  MuxToFake<FakeMuxEngine> f;
  auto rec = std::make_shared<Recorder>();
  auto id = f.mux->Start(Req(2), absl::InfiniteFuture(), rec);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(Eventually(f.engine, [&] { return f.engine.starts.size() == 1; }));
  f.mux->Cancel(*id);
  ASSERT_TRUE(Eventually(f.engine, [&] { return f.engine.cancels.size() == 1; }));
  EXPECT_EQ(f.engine.cancels[0], *id);
  EXPECT_FALSE(rec->WaitDone(absl::Milliseconds(100)));
}

TEST(EngineMuxTest, ADeadlineEndsTheGenerationWhenTheEngineNeverAnswers) {
  MuxToFake<FakeMuxEngine> f;
  auto rec = std::make_shared<Recorder>();
  absl::Time start = absl::Now();
  ASSERT_TRUE(RunToEnd(*f.mux, 2, start + absl::Milliseconds(150), rec));
  EXPECT_EQ(rec->status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(140));
  // And the engine is told to stop.
  ASSERT_TRUE(Eventually(f.engine, [&] { return f.engine.cancels.size() == 1; }));
}

TEST(EngineMuxTest, AStreamThatBreaksEndsItsGenerationsAndTheNextStartReopens) {
  MuxToFake<FakeMuxEngine> f;
  auto a = std::make_shared<Recorder>(), b = std::make_shared<Recorder>();
  ASSERT_TRUE(f.mux->Start(Req(2), absl::InfiniteFuture(), a).ok());
  ASSERT_TRUE(f.mux->Start(Req(4), absl::InfiniteFuture(), b).ok());
  for (auto& r : {a, b}) {
    ASSERT_TRUE(r->WaitDone(absl::Seconds(5)));
    EXPECT_EQ(r->status.error_code(), grpc::StatusCode::UNAVAILABLE) << r->status.error_message();
  }
  auto c = std::make_shared<Recorder>();
  ASSERT_TRUE(RunToEnd(*f.mux, 1, absl::InfiniteFuture(), c));
  EXPECT_TRUE(c->status.ok()) << c->status.error_message();
  std::lock_guard lock(f.engine.mu);
  EXPECT_EQ(f.engine.streams, 2);
}

TEST(EngineMuxTest, CloseEndsRunningGenerationsCancelled) {
  MuxToFake<FakeMuxEngine> f;
  auto rec = std::make_shared<Recorder>();
  ASSERT_TRUE(f.mux->Start(Req(2), absl::InfiniteFuture(), rec).ok());
  ASSERT_TRUE(Eventually(f.engine, [&] { return f.engine.starts.size() == 1; }));
  f.mux->Close(absl::Seconds(5));
  ASSERT_TRUE(rec->WaitDone(absl::Seconds(1)));
  EXPECT_EQ(rec->status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(f.mux->Start(Req(1), absl::InfiniteFuture(), std::make_shared<Recorder>()).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(EngineMuxTest, AWorkerWithoutGenerateMuxIsRememberedAsSuch) {
  MuxToFake<FakeEngine> f;  // Generate only
  auto rec = std::make_shared<Recorder>();
  ASSERT_TRUE(RunToEnd(*f.mux, 1, absl::InfiniteFuture(), rec));
  EXPECT_EQ(rec->status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(f.mux->Start(Req(1), absl::InfiniteFuture(), std::make_shared<Recorder>()).status().code(),
            absl::StatusCode::kUnimplemented);
}

// Generation end to end over each kind of worker: the same tokens and text,
// over GenerateMux when the worker has it and over Generate when it has not.
class Sink : public GenerationSink {
 public:
  void OnResponse(v1::GatewayGenerateResponse r) override {
    std::lock_guard lock(mu_);
    for (const auto& t : r.tokens()) tokens.push_back(t.token_id());
    text += r.text_delta();
    if (r.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) finish = r.finish_reason();
  }
  void OnFinish(const absl::Status& st) override {
    std::lock_guard lock(mu_);
    status = st;
    done = true;
    cv_.notify_all();
  }
  bool Wait() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [this] { return done; });
  }
  std::vector<int32_t> tokens;
  std::string text;
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  absl::Status status;
  bool done = false;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

class GenerationOverWorkerTest : public ::testing::TestWithParam<bool> {};

TEST_P(GenerationOverWorkerTest, StreamsTheWorkersTokens) {
  bool with_mux = GetParam();
  FakeMuxEngine mux_engine;
  FakeEngine plain_engine;
  FakeEngine& engine = with_mux ? static_cast<FakeEngine&>(mux_engine) : plain_engine;
  Server server(&engine);
  Router router;
  WorkerPoolOptions po;
  po.static_workers = {server.address()};
  WorkerPool pool(po, router);
  pool.Start();
  Admission admission(4, 4);
  GatewayMetrics metrics;
  tokenizer::TokenizerRegistry vocab(std::string(LLMESH_SHARED_DIR) + "/models");
  GatewayContext gw;
  gw.pool = &pool;
  gw.router = &router;
  gw.admission = &admission;
  gw.metrics = &metrics;
  gw.local_vocab = &vocab;
  gw.default_model = "stories260K";
  for (int round = 0; round < 2; ++round) {  // the second finds the worker's kind known
    GenerateJob job;
    job.input = GenerateJob::Input::kTokenIds;
    job.prompt_ids = {1, 403};
    job.stopping.set_max_tokens(3);
    auto sink = std::make_shared<Sink>();
    auto gen = Generation::Start(gw, job, "req" + std::to_string(round), absl::Now() + absl::Seconds(10), sink);
    ASSERT_TRUE(sink->Wait());
    ASSERT_TRUE(sink->status.ok()) << sink->status;
    EXPECT_EQ(sink->tokens, kTokens);
    EXPECT_FALSE(sink->text.empty());
    EXPECT_EQ(sink->finish, v1::FINISH_REASON_LENGTH);
  }
  pool.Stop();
  std::lock_guard lock(engine.mu);
  EXPECT_EQ(engine.generates, with_mux ? 0 : 2);
  EXPECT_EQ(engine.starts.size(), with_mux ? 2u : 0u);
}

INSTANTIATE_TEST_SUITE_P(MuxOrNot, GenerationOverWorkerTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "GenerateMux" : "GenerateOnly"; });

}  // namespace
}  // namespace llmesh::gateway
