// AgentStore: sessions, messages and steps in order, listing and deleting,
// registered tools, and everything still there after the database is closed
// and opened again.
#include "llmesh/agent/store.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace llmesh::agent {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            absl::StrCat("agent_store_", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                         ::getpid()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto s = AgentStore::Open(dir_ + "/agent.db");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  std::string dir_;
  std::unique_ptr<AgentStore> store_;
};

v1::ChatMessage Msg(const std::string& role, const std::string& content) {
  v1::ChatMessage m;
  m.set_role(role);
  m.set_content(content);
  return m;
}

TEST_F(StoreTest, SessionHistorySurvivesReopen) {
  auto s = store_->CreateSession("stories260K", "be brief");
  ASSERT_TRUE(s.ok()) << s.status();
  const std::string id = s->session_id();
  EXPECT_EQ(id.size(), 34u);  // "s-" + 32 hex digits
  ASSERT_TRUE(store_->AppendMessage(id, Msg("user", "hi")).ok());
  v1::ChatMessage tool = Msg("tool", "42");
  tool.set_name("calculator");
  tool.set_tool_call_id("call_1");
  ASSERT_TRUE(store_->AppendMessage(id, tool).ok());
  v1::AgentStep call;
  call.set_kind(v1::AGENT_STEP_KIND_TOOL_CALL);
  call.set_step(1);
  call.set_tool_name("calculator");
  call.set_tool_call_id("call_1");
  call.set_arguments_json(R"({"expression":"6*7"})");
  ASSERT_TRUE(store_->AppendStep(id, call).ok());
  v1::AgentStep usage;
  usage.set_kind(v1::AGENT_STEP_KIND_USAGE);
  usage.set_step(1);
  usage.mutable_usage()->set_prompt_tokens(30);
  usage.mutable_usage()->set_completion_tokens(12);
  usage.mutable_usage()->set_cached_prompt_tokens(8);
  ASSERT_TRUE(store_->AppendStep(id, usage).ok());

  Reopen();
  auto got = store_->GetSession(id, /*with_history=*/true);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->model(), "stories260K");
  EXPECT_EQ(got->system_prompt(), "be brief");
  ASSERT_EQ(got->messages_size(), 2);
  EXPECT_EQ(got->messages(0).content(), "hi");
  EXPECT_EQ(got->messages(1).name(), "calculator");
  EXPECT_EQ(got->messages(1).tool_call_id(), "call_1");
  ASSERT_EQ(got->steps_size(), 2);
  EXPECT_EQ(got->steps(0).kind(), v1::AGENT_STEP_KIND_TOOL_CALL);
  EXPECT_EQ(got->steps(0).arguments_json(), R"({"expression":"6*7"})");
  EXPECT_EQ(got->steps(0).session_id(), id);
  EXPECT_EQ(got->steps(1).usage().total_tokens(), 42);
  EXPECT_EQ(got->steps(1).usage().cached_prompt_tokens(), 8);
  EXPECT_GE(got->updated_unix_ms(), got->created_unix_ms());

  auto light = store_->GetSession(id, /*with_history=*/false);
  ASSERT_TRUE(light.ok());
  EXPECT_EQ(light->messages_size(), 0);
}

TEST_F(StoreTest, ListUpdateAndDelete) {
  auto a = store_->CreateSession("m1", "");
  auto b = store_->CreateSession("m2", "");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->session_id(), b->session_id());
  ASSERT_TRUE(store_->UpdateSession(a->session_id(), "m3", "sys").ok());
  auto list = store_->ListSessions(10);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  auto one = store_->ListSessions(1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  auto got = store_->GetSession(a->session_id(), false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->model(), "m3");
  EXPECT_EQ(got->system_prompt(), "sys");

  ASSERT_TRUE(store_->AppendMessage(a->session_id(), Msg("user", "x")).ok());
  ASSERT_TRUE(store_->DeleteSession(a->session_id()).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->GetSession(a->session_id(), true).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->DeleteSession(a->session_id())));
  EXPECT_TRUE(absl::IsNotFound(store_->AppendMessage(a->session_id(), Msg("user", "y"))));
  EXPECT_TRUE(absl::IsNotFound(store_->UpdateSession("s-nope", "m", "")));
  list = store_->ListSessions(10);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

TEST_F(StoreTest, RegisteredToolsPersist) {
  v1::ToolSpec t;
  t.set_name("weather");
  t.set_description("d1");
  t.set_parameters_json_schema(R"({"type":"object"})");
  t.set_address("127.0.0.1:9000");
  ASSERT_TRUE(store_->SaveTool(t).ok());
  t.set_address("127.0.0.1:9001");  // registered again from elsewhere: replaced
  ASSERT_TRUE(store_->SaveTool(t).ok());
  Reopen();
  auto tools = store_->ListTools();
  ASSERT_TRUE(tools.ok());
  ASSERT_EQ(tools->size(), 1u);
  EXPECT_EQ((*tools)[0].address(), "127.0.0.1:9001");
  ASSERT_TRUE(store_->DeleteTool("weather").ok());
  tools = store_->ListTools();
  ASSERT_TRUE(tools.ok());
  EXPECT_TRUE(tools->empty());
}

TEST_F(StoreTest, RefusesADatabaseFromANewerBuild) {
  store_.reset();
  {
    auto db = SqliteDb::Open(dir_ + "/agent.db", false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=99").ok());
  }
  auto s = AgentStore::Open(dir_ + "/agent.db");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
}

}  // namespace
}  // namespace llmesh::agent
