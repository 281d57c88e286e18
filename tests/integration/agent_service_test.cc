// llmesh-agent as a real process with llmesh-tokenizer, llmesh-engine
// (stories260K) and llmesh-rag on 127.0.0.1, plus a ToolService served by
// this test: a run forced to call the calculator streams every step kind
// with schema-valid arguments; sessions are read, listed, deleted, and
// continued after the agent restarts; remote tools are registered and called,
// time out as observations, and see the client's cancel; rag_search queries
// a collection; bad requests are INVALID_ARGUMENT.
//
// The model is tiny and writes stories, not JSON: the grammar keeps its turns
// valid, and a logit bias on the quote token (an ordinary sampling parameter)
// keeps its strings short enough for its 512-token context.
#include <signal.h>

#include <atomic>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/cluster_auth.h"
#include "llmesh/v1/agent.grpc.pb.h"
#include "llmesh/v1/rag.grpc.pb.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "service_process.h"

namespace llmesh::testing {
namespace {

using namespace llmesh::v1;

constexpr char kModel[] = "stories260K";

// Tools served by the test process: `echo` answers, `slow` waits until its
// call is cancelled (by the deadline or the client) and counts that.
class TestTools final : public ToolService::Service {
 public:
  grpc::Status Describe(grpc::ServerContext* ctx, const DescribeToolsRequest*, DescribeToolsResponse* resp) override {
    NoteClusterToken(*ctx);
    auto* echo = resp->add_tools();
    echo->set_name("echo");
    echo->set_description("Repeats a short text.");
    echo->set_parameters_json_schema(
        R"({"type":"object","properties":{"text":{"type":"string","maxLength":12}},"required":["text"]})");
    auto* slow = resp->add_tools();
    slow->set_name("slow");
    slow->set_description("Takes its time.");
    slow->set_parameters_json_schema(R"({"type":"object","properties":{},"additionalProperties":false})");
    return grpc::Status::OK;
  }

  grpc::Status Call(grpc::ServerContext* ctx, const ToolCallRequest* req, ToolCallResponse* resp) override {
    NoteClusterToken(*ctx);
    if (req->name() == "echo") {
      echo_args.push_back(req->arguments_json());
      resp->set_output(absl::StrCat("echo says ", req->arguments_json()));
      return grpc::Status::OK;
    }
    slow_started.fetch_add(1);
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    slow_cancelled.fetch_add(1);
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }

  // A tool server is outside the stack: it must never see the cluster token.
  void NoteClusterToken(const grpc::ServerContext& ctx) {
    if (ctx.client_metadata().count(rpc::kClusterTokenKey)) saw_cluster_token.fetch_add(1);
  }

  std::vector<std::string> echo_args;  // written by one call at a time in these tests
  std::atomic<int> saw_cluster_token{0};
  std::atomic<int> slow_started{0};
  std::atomic<int> slow_cancelled{0};
};

struct RunResult {
  grpc::Status status;
  std::vector<AgentStep> steps;
  std::vector<AgentStepKind> kinds() const {
    std::vector<AgentStepKind> k;
    for (const auto& s : steps) k.push_back(s.kind());
    return k;
  }
  const AgentStep* Find(AgentStepKind kind) const {
    for (const auto& s : steps)
      if (s.kind() == kind) return &s;
    return nullptr;
  }
};

class AgentServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string models = std::string(LLMESH_SHARED_DIR) + "/models";
    auto tok = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-tokenizer", {"--model-dir", models});
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = new Service(std::move(*tok));
    auto eng = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-engine",
                            {"--model-dir", models, "--model", kModel, "--threads", "1", "--kv-budget-mb", "16"});
    ASSERT_TRUE(eng.ok()) << eng.status();
    engine_ = new Service(std::move(*eng));
    ASSERT_TRUE(WaitForServing(tokenizer_->address(), absl::Seconds(30)).ok());
    ASSERT_TRUE(WaitForServing(engine_->address(), absl::Seconds(30)).ok());
    auto rag = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-rag",
                            {"--data-dir", MakeTempDir("agent-rag"), "--engine", engine_->address(), "--tokenizer",
                             tokenizer_->address()});
    ASSERT_TRUE(rag.ok()) << rag.status();
    rag_ = new Service(std::move(*rag));
    ASSERT_TRUE(WaitForServing(rag_->address(), absl::Seconds(60)).ok());

    tools_ = new TestTools;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &tools_port_);
    builder.RegisterService(tools_);
    tools_server_ = builder.BuildAndStart().release();
    ASSERT_NE(tools_server_, nullptr);

    data_dir_ = new std::string(MakeTempDir("agent-data"));
    StartAgent();
    quote_id_ = QuoteTokenId();
  }
  static void TearDownTestSuite() {
    if (tools_server_) tools_server_->Shutdown(std::chrono::system_clock::now());
    // Null too, so a repeated run (--gtest_repeat) starts from scratch.
    auto drop = [](auto*& p) {
      delete p;
      p = nullptr;
    };
    drop(stub_);
    drop(agent_);
    drop(tools_server_);
    drop(tools_);
    drop(rag_);
    drop(engine_);
    drop(tokenizer_);
    drop(data_dir_);
  }

  // (Re)starts llmesh-agent on the suite's data directory.
  static void StartAgent() {
    delete stub_;
    stub_ = nullptr;
    if (agent_) {
      agent_->process->Signal(SIGTERM);
      auto code = agent_->process->Wait(absl::Seconds(20));
      ASSERT_TRUE(code.ok());
      EXPECT_EQ(*code, 0);
    }
    delete agent_;
    agent_ = nullptr;
    auto agent = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-agent",
                              {"--data-dir", *data_dir_, "--engine", engine_->address(), "--tokenizer",
                               tokenizer_->address(), "--rag", rag_->address(), "--model", kModel});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = new Service(std::move(*agent));
    ASSERT_TRUE(WaitForServing(agent_->address(), absl::Seconds(30), "llmesh.v1.AgentService").ok());
    stub_ = AgentService::NewStub(rpc::CreateChannel(agent_->address())).release();
  }

  static int32_t QuoteTokenId() {
    auto stub = TokenizerService::NewStub(rpc::CreateChannel(tokenizer_->address()));
    TokenizeRequest req;
    req.set_model(kModel);
    req.set_text("\"");
    TokenizeResponse resp;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    EXPECT_TRUE(stub->Tokenize(ctx.get(), req, &resp).ok());
    EXPECT_GE(resp.token_ids_size(), 1);
    return resp.token_ids_size() > 0 ? resp.token_ids(resp.token_ids_size() - 1) : -1;
  }

  static AgentRunRequest Request(const std::string& input, std::vector<std::string> tools, const std::string& choice) {
    AgentRunRequest req;
    req.set_input(input);
    for (auto& t : tools) req.add_tools(t);
    req.set_tool_choice(choice);
    req.mutable_limits()->set_max_steps(2);
    req.mutable_limits()->set_max_tokens(300);
    auto* s = req.mutable_sampling();
    s->set_seed(7);
    s->set_temperature(0.8f);
    (*s->mutable_logit_bias())[quote_id_] = 6.0f;  // short strings: the context is 512 tokens
    return req;
  }

  static RunResult Run(const AgentRunRequest& req, absl::Duration timeout = absl::Seconds(120)) {
    RunResult r;
    auto ctx = rpc::ContextWithTimeout(timeout);
    auto reader = stub_->Run(ctx.get(), req);
    AgentStep step;
    while (reader->Read(&step)) r.steps.push_back(step);
    r.status = reader->Finish();
    return r;
  }

  static grpc::Status Register(const std::string& name, ToolSpec* out = nullptr) {
    RegisterToolRequest req;
    req.set_address(absl::StrCat("127.0.0.1:", tools_port_));
    req.set_name(name);
    ToolSpec spec;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    return stub_->RegisterTool(ctx.get(), req, out ? out : &spec);
  }

  static grpc::Status GetSession(const std::string& id, AgentSession* out) {
    GetSessionRequest req;
    req.set_session_id(id);
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    return stub_->GetSession(ctx.get(), req, out);
  }

  static inline Service* tokenizer_ = nullptr;
  static inline Service* engine_ = nullptr;
  static inline Service* rag_ = nullptr;
  static inline Service* agent_ = nullptr;
  static inline TestTools* tools_ = nullptr;
  static inline grpc::Server* tools_server_ = nullptr;
  static inline int tools_port_ = 0;
  static inline std::string* data_dir_ = nullptr;
  static inline AgentService::Stub* stub_ = nullptr;
  static inline int32_t quote_id_ = -1;
};

TEST_F(AgentServiceTest, ForcedCalculatorRunStreamsEveryStepWithSchemaValidArguments) {
  RunResult r = Run(Request("What is two plus two?", {"calculator"}, "calculator"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  std::vector<AgentStepKind> want = {AGENT_STEP_KIND_THOUGHT, AGENT_STEP_KIND_TOOL_CALL, AGENT_STEP_KIND_TOOL_RESULT,
                                     AGENT_STEP_KIND_FINAL_ANSWER, AGENT_STEP_KIND_USAGE};
  ASSERT_EQ(r.kinds(), want) << (r.Find(AGENT_STEP_KIND_ERROR) ? r.Find(AGENT_STEP_KIND_ERROR)->text() : "");

  const AgentStep& call = r.steps[1];
  EXPECT_EQ(call.tool_name(), "calculator");
  EXPECT_EQ(call.tool_call_id(), "call_1");
  // Valid against the calculator's schema: an object with exactly one
  // property, "expression", a string of 1..200 characters of its alphabet.
  auto args = nlohmann::json::parse(call.arguments_json(), nullptr, false);
  ASSERT_FALSE(args.is_discarded()) << call.arguments_json();
  ASSERT_TRUE(args.is_object());
  ASSERT_EQ(args.size(), 1u) << call.arguments_json();
  ASSERT_TRUE(args["expression"].is_string());
  EXPECT_TRUE(std::regex_match(args["expression"].get<std::string>(), std::regex("^[0-9a-z+*/%^()., -]{1,200}$")))
      << call.arguments_json();

  // The tool ran: its result is the value, or the evaluator's error.
  const AgentStep& result = r.steps[2];
  EXPECT_EQ(result.tool_call_id(), "call_1");
  EXPECT_FALSE(result.text().empty());
  EXPECT_FALSE(r.steps[0].text().empty());  // the thought
  EXPECT_FALSE(r.steps[3].text().empty());  // the answer
  const Usage& usage = r.steps.back().usage();
  EXPECT_GT(usage.prompt_tokens(), 0);
  EXPECT_GT(usage.completion_tokens(), 0);
  EXPECT_LE(usage.completion_tokens(), 300);
  EXPECT_EQ(usage.total_tokens(), usage.prompt_tokens() + usage.completion_tokens());
  for (const auto& s : r.steps) EXPECT_EQ(s.session_id(), r.steps[0].session_id());
}

// An "auto" turn: the engine compiles the oneOf of a tool call and an
// answer; whichever the model picks, the turn parses and the run ends.
TEST_F(AgentServiceTest, AutoTurnsChooseBetweenAToolAndAnAnswer) {
  for (uint64_t seed : {1, 2, 3, 4}) {
    AgentRunRequest req = Request("What is two plus two?", {"calculator"}, "auto");
    req.mutable_sampling()->set_seed(seed);
    RunResult r = Run(req);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_GE(r.steps.size(), 2u);
    EXPECT_EQ(r.steps.back().kind(), AGENT_STEP_KIND_USAGE);
    const AgentStepKind end = r.steps[r.steps.size() - 2].kind();
    EXPECT_TRUE(end == AGENT_STEP_KIND_FINAL_ANSWER || end == AGENT_STEP_KIND_ERROR) << end;
    if (const AgentStep* call = r.Find(AGENT_STEP_KIND_TOOL_CALL)) {
      auto args = nlohmann::json::parse(call->arguments_json(), nullptr, false);
      ASSERT_TRUE(args.is_object() && args["expression"].is_string()) << call->arguments_json();
    }
    AgentSession s;
    ASSERT_TRUE(GetSession(r.steps[0].session_id(), &s).ok());
    ASSERT_GE(s.messages_size(), 2);
    auto turn = nlohmann::json::parse(s.messages(1).content(), nullptr, false);  // the model's first turn
    ASSERT_TRUE(turn.is_object()) << s.messages(1).content();
    EXPECT_TRUE(turn.contains("final_answer") || turn["tool"] == "calculator") << s.messages(1).content();
  }
}

TEST_F(AgentServiceTest, SessionsAreReadListedDeletedAndContinuedAfterARestart) {
  RunResult first = Run(Request("What is six times seven?", {"calculator"}, "calculator"));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  const std::string id = first.steps[0].session_id();

  StartAgent();  // SIGTERM, then a new process on the same data directory

  AgentRunRequest req = Request("And now?", {}, "");
  req.set_session_id(id);
  req.clear_model();
  RunResult second = Run(req);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(second.steps[0].session_id(), id);
  EXPECT_EQ(second.steps[0].step(), first.steps.back().step() + 1);

  AgentSession s;
  ASSERT_TRUE(GetSession(id, &s).ok());
  EXPECT_EQ(s.model(), kModel);
  EXPECT_EQ(s.steps_size(), static_cast<int>(first.steps.size() + second.steps.size()));
  ASSERT_GE(s.messages_size(), 5);
  EXPECT_EQ(s.messages(0).role(), "user");
  EXPECT_EQ(s.messages(0).content(), "What is six times seven?");
  EXPECT_EQ(s.messages(2).role(), "tool");
  EXPECT_EQ(s.messages(2).name(), "calculator");

  ListSessionsResponse list;
  {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub_->ListSessions(ctx.get(), ListSessionsRequest(), &list).ok());
  }
  bool listed = false;
  for (const auto& l : list.sessions()) listed = listed || l.session_id() == id;
  EXPECT_TRUE(listed);
  EXPECT_EQ(list.sessions(0).session_id(), id);  // most recently updated first

  DeleteSessionRequest del;
  del.set_session_id(id);
  DeleteSessionResponse del_resp;
  {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub_->DeleteSession(ctx.get(), del, &del_resp).ok());
  }
  EXPECT_EQ(GetSession(id, &s).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AgentServiceTest, RemoteToolIsRegisteredAndCalledAndSurvivesARestart) {
  ToolSpec spec;
  ASSERT_TRUE(Register("echo", &spec).ok());
  EXPECT_EQ(spec.name(), "echo");
  EXPECT_EQ(spec.address(), absl::StrCat("127.0.0.1:", tools_port_));

  StartAgent();  // registrations are stored with the sessions
  ListToolsResponse list;
  {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub_->ListTools(ctx.get(), ListToolsRequest(), &list).ok());
  }
  std::vector<std::string> names;
  for (const auto& t : list.tools()) names.push_back(t.name());
  EXPECT_EQ(names, (std::vector<std::string>{"calculator", "current_time", "rag_search", "echo"}));

  tools_->echo_args.clear();
  RunResult r = Run(Request("Say hello", {"echo", "calculator"}, "echo"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(tools_->echo_args.size(), 1u);
  auto args = nlohmann::json::parse(tools_->echo_args[0], nullptr, false);
  ASSERT_TRUE(args.is_object()) << tools_->echo_args[0];
  ASSERT_TRUE(args["text"].is_string());
  EXPECT_LE(args["text"].get<std::string>().size(), 12u);  // maxLength held (ASCII from this model's vocabulary)
  const AgentStep* result = r.Find(AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  EXPECT_FALSE(result->tool_error());
  EXPECT_EQ(result->text(), absl::StrCat("echo says ", tools_->echo_args[0]));
  EXPECT_EQ(tools_->saw_cluster_token.load(), 0);

  UnregisterToolRequest un;
  un.set_name("echo");
  UnregisterToolResponse un_resp;
  {
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub_->UnregisterTool(ctx.get(), un, &un_resp).ok());
  }
  EXPECT_EQ(Run(Request("Say hello", {"echo"}, "echo")).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AgentServiceTest, SlowRemoteToolTimesOutAsAnObservation) {
  ASSERT_TRUE(Register("slow").ok());
  int cancelled_before = tools_->slow_cancelled.load();
  AgentRunRequest req = Request("Wait", {"slow"}, "slow");
  req.mutable_limits()->set_tool_timeout_ms(300);
  absl::Time start = absl::Now();
  RunResult r = Run(req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
  const AgentStep* result = r.Find(AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  EXPECT_TRUE(result->tool_error());
  EXPECT_EQ(result->text(), "timed out after 300 ms");
  EXPECT_NE(r.Find(AGENT_STEP_KIND_FINAL_ANSWER), nullptr);  // the run went on
  // The tool's own call ended with the deadline, too.
  absl::Time until = absl::Now() + absl::Seconds(5);
  while (tools_->slow_cancelled.load() == cancelled_before && absl::Now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(tools_->slow_cancelled.load(), cancelled_before);
}

TEST_F(AgentServiceTest, ClientCancelReachesTheRemoteTool) {
  ASSERT_TRUE(Register("slow").ok());
  int started = tools_->slow_started.load();
  int cancelled = tools_->slow_cancelled.load();
  AgentRunRequest req = Request("Wait", {"slow"}, "slow");
  req.mutable_limits()->set_tool_timeout_ms(60000);
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(120));
  auto reader = stub_->Run(ctx.get(), req);
  AgentStep step;
  std::string session;
  while (reader->Read(&step)) {
    session = step.session_id();
    if (step.kind() == AGENT_STEP_KIND_TOOL_CALL) break;
  }
  ASSERT_EQ(step.kind(), AGENT_STEP_KIND_TOOL_CALL);
  absl::Time until = absl::Now() + absl::Seconds(10);
  while (tools_->slow_started.load() == started && absl::Now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GT(tools_->slow_started.load(), started);
  absl::Time cancel_at = absl::Now();
  ctx->TryCancel();
  while (tools_->slow_cancelled.load() == cancelled && absl::Now() < cancel_at + absl::Seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GT(tools_->slow_cancelled.load(), cancelled);
  EXPECT_LT(absl::Now() - cancel_at, absl::Seconds(2));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // The session records how the run ended.
  AgentSession s;
  until = absl::Now() + absl::Seconds(10);
  bool ended = false;
  while (!ended && absl::Now() < until) {
    ASSERT_TRUE(GetSession(session, &s).ok());
    ended = s.steps_size() > 0 && s.steps(s.steps_size() - 1).kind() == AGENT_STEP_KIND_USAGE;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(ended);
  EXPECT_EQ(s.steps(s.steps_size() - 2).kind(), AGENT_STEP_KIND_ERROR);
  EXPECT_EQ(s.steps(s.steps_size() - 2).text(), "cancelled");
}

TEST_F(AgentServiceTest, ClientDeadlineEndsTheRun) {
  ASSERT_TRUE(Register("slow").ok());
  AgentRunRequest req = Request("Wait", {"slow"}, "slow");
  req.mutable_limits()->set_tool_timeout_ms(60000);
  absl::Time start = absl::Now();
  RunResult r = Run(req, absl::Seconds(3));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(AgentServiceTest, RagSearchQueriesTheCollection) {
  auto rag = RagService::NewStub(rpc::CreateChannel(rag_->address()));
  {
    CreateCollectionRequest req;
    req.set_name("lore");
    req.set_embedding_model(kModel);
    Collection c;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(30));
    ASSERT_TRUE(rag->CreateCollection(ctx.get(), req, &c).ok());
  }
  {
    UpsertRequest req;
    req.set_collection("lore");
    auto* d = req.add_documents();
    d->set_id("dragon");
    d->set_text("The red dragon sleeps on a pile of gold in the mountain.");
    UpsertResponse resp;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(60));
    ASSERT_TRUE(rag->Upsert(ctx.get(), req, &resp).ok());
  }
  AgentRunRequest req = Request("Where does the dragon sleep?", {"rag_search"}, "rag_search");
  req.set_rag_collection("lore");
  RunResult r = Run(req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  const AgentStep* result = r.Find(AGENT_STEP_KIND_TOOL_RESULT);
  ASSERT_NE(result, nullptr);
  ASSERT_FALSE(result->tool_error()) << result->text();
  auto hits = nlohmann::json::parse(result->text(), nullptr, false);
  ASSERT_TRUE(hits.is_array()) << result->text();
  ASSERT_EQ(hits.size(), 1u);  // the only document
  EXPECT_EQ(hits[0]["document_id"], "dragon");
  EXPECT_TRUE(absl::StrContains(hits[0]["text"].get<std::string>(), "pile of gold"));
}

// What `llmesh up` runs: generations through the gateway's Chat, which routes
// to the engine worker and renders the template itself.
TEST_F(AgentServiceTest, GenerationsThroughTheGateway) {
  auto gw = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-gateway",
                         {"--http-listen", "127.0.0.1:0", "--tokenizer", tokenizer_->address(), "--workers",
                          engine_->address(), "--rag=", "--agent="});
  ASSERT_TRUE(gw.ok()) << gw.status();
  ASSERT_TRUE(WaitForServing(gw->address(), absl::Seconds(30)).ok());
  auto agent = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-agent",
                            {"--data-dir", MakeTempDir("agent-gw"), "--gateway", gw->address(), "--rag=", "--model",
                             kModel});
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_TRUE(WaitForServing(agent->address(), absl::Seconds(30), "llmesh.v1.AgentService").ok());
  auto stub = AgentService::NewStub(rpc::CreateChannel(agent->address()));
  // The gateway learns its static worker's models from a health check: retry
  // until it routes.
  RunResult r;
  absl::Time until = absl::Now() + absl::Seconds(30);
  do {
    r = RunResult();
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(120));
    auto reader = stub->Run(ctx.get(), Request("What is two plus two?", {"calculator"}, "calculator"));
    AgentStep step;
    while (reader->Read(&step)) r.steps.push_back(step);
    r.status = reader->Finish();
    if (r.status.error_code() != grpc::StatusCode::UNAVAILABLE && r.status.error_code() != grpc::StatusCode::NOT_FOUND)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (absl::Now() < until);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  std::vector<AgentStepKind> want = {AGENT_STEP_KIND_THOUGHT, AGENT_STEP_KIND_TOOL_CALL, AGENT_STEP_KIND_TOOL_RESULT,
                                     AGENT_STEP_KIND_FINAL_ANSWER, AGENT_STEP_KIND_USAGE};
  ASSERT_EQ(r.kinds(), want) << (r.Find(AGENT_STEP_KIND_ERROR) ? r.Find(AGENT_STEP_KIND_ERROR)->text() : "");
  auto args = nlohmann::json::parse(r.steps[1].arguments_json(), nullptr, false);
  ASSERT_TRUE(args.is_object()) << r.steps[1].arguments_json();
  EXPECT_TRUE(args["expression"].is_string());
  EXPECT_GT(r.steps.back().usage().completion_tokens(), 0);
}

TEST_F(AgentServiceTest, BadRequestsAreInvalidArgument) {
  auto code = [](AgentRunRequest req) { return Run(req).status.error_code(); };
  EXPECT_EQ(code(Request("", {}, "")), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code(Request("x", {"shell"}, "")), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code(Request("x", {"calculator"}, "sometimes")), grpc::StatusCode::INVALID_ARGUMENT);
  AgentRunRequest neg = Request("x", {}, "");
  neg.mutable_limits()->set_max_tokens(-1);
  EXPECT_EQ(code(neg), grpc::StatusCode::INVALID_ARGUMENT);
  AgentRunRequest grammar = Request("x", {}, "");
  grammar.mutable_sampling()->set_grammar("root ::= \"a\"");
  EXPECT_EQ(code(grammar), grpc::StatusCode::INVALID_ARGUMENT);
  AgentRunRequest unknown = Request("x", {}, "");
  unknown.set_session_id("s-does-not-exist");
  EXPECT_EQ(code(unknown), grpc::StatusCode::NOT_FOUND);
  AgentRunRequest model = Request("x", {}, "");
  model.set_model("no-such-model");
  EXPECT_NE(code(model), grpc::StatusCode::OK);
  EXPECT_EQ(Register("calculator").error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // a built-in name
  EXPECT_EQ(Register("nope").error_code(), grpc::StatusCode::INVALID_ARGUMENT);       // not offered there
  // The service still works after all that.
  EXPECT_TRUE(Run(Request("Hello", {}, "")).status.ok());
}

}  // namespace
}  // namespace llmesh::testing
