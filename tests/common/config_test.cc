#include "llmesh/common/config.h"

#include <fstream>

#include <gtest/gtest.h>

namespace llmesh {
namespace {

std::vector<OptionSpec> Options() {
  return {{"config", "", "file"},
          {"port", "1", "a port"},
          {"model_dir", "/models", "dir"},
          {"verbose", "false", "a bool"},
          {"grace", "10s", "a duration"},
          {"workers", "", "a list"}};
}

std::string WriteFile(const std::string& text) {
  std::string path = ::testing::TempDir() + "/cfg-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml";
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, DefaultsApplyWhenNothingIsSet) {
  auto cfg = Config::Load("engine", Options(), {}, {});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->GetString("model_dir"), "/models");
  EXPECT_EQ(*cfg->GetInt("port"), 1);
  EXPECT_EQ(cfg->SourceOf("port"), ConfigSource::kDefault);
}

TEST(ConfigTest, PrecedenceIsFlagThenEnvThenFileThenDefault) {
  std::string file = WriteFile(
      "common: {port: 5, model_dir: /common}\n"
      "engine: {port: 2, model_dir: /file, grace: 3s}\n"
      "gateway: {port: 9}\n");
  std::vector<std::string> env = {"LLMESH_ENGINE_PORT=3", "LLMESH_ENGINE_MODEL_DIR=/env",
                                  "LLMESH_GATEWAY_GRACE=1s"};
  auto cfg = Config::Load("engine", Options(), {"--config", file, "--port=4"}, env);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(*cfg->GetInt("port"), 4);
  EXPECT_EQ(cfg->SourceOf("port"), ConfigSource::kFlag);
  EXPECT_EQ(cfg->GetString("model_dir"), "/env");
  EXPECT_EQ(cfg->SourceOf("model_dir"), ConfigSource::kEnv);
  EXPECT_EQ(*cfg->GetDuration("grace"), absl::Seconds(3));  // another section's env is ignored
  EXPECT_EQ(cfg->SourceOf("grace"), ConfigSource::kFile);
}

TEST(ConfigTest, ServiceSectionOverridesCommonSection) {
  std::string file = WriteFile("common: {port: 5, model_dir: /common}\nengine: {port: 2}\n");
  auto cfg = Config::Load("engine", Options(), {}, {"LLMESH_CONFIG=" + file});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(*cfg->GetInt("port"), 2);
  EXPECT_EQ(cfg->GetString("model_dir"), "/common");
}

TEST(ConfigTest, FlagsAcceptDashesUnderscoresAndBareBooleans) {
  auto cfg = Config::Load("engine", Options(), {"--model-dir", "/a", "--verbose", "pos1", "--workers=a, b,,c"}, {});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->GetString("model_dir"), "/a");
  EXPECT_TRUE(*cfg->GetBool("verbose"));
  EXPECT_EQ(cfg->positional(), std::vector<std::string>{"pos1"});
  EXPECT_EQ(cfg->GetList("workers"), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(ConfigTest, YamlListsBecomeCommaLists) {
  std::string file = WriteFile("engine:\n  workers: [x:1, y:2]\n");
  auto cfg = Config::Load("engine", Options(), {"--config=" + file}, {});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->GetList("workers"), (std::vector<std::string>{"x:1", "y:2"}));
}

TEST(ConfigTest, ErrorsSayWhatIsWrong) {
  auto unknown = Config::Load("engine", Options(), {"--nope=1"}, {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown flag --nope"), absl::string_view::npos);

  auto missing_value = Config::Load("engine", Options(), {"--port"}, {});
  ASSERT_FALSE(missing_value.ok());
  EXPECT_NE(missing_value.status().message().find("needs a value"), absl::string_view::npos);

  auto no_file = Config::Load("engine", Options(), {"--config=/nonexistent/x.yaml"}, {});
  ASSERT_FALSE(no_file.ok());
  EXPECT_NE(no_file.status().message().find("cannot read config file"), absl::string_view::npos);

  auto bad_yaml = Config::Load("engine", Options(), {"--config=" + WriteFile("engine: [unclosed\n")}, {});
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad_yaml.status()));

  auto not_map = Config::Load("engine", Options(), {"--config=" + WriteFile("engine: 3\n")}, {});
  ASSERT_FALSE(not_map.ok());
  EXPECT_NE(not_map.status().message().find("must be a mapping"), absl::string_view::npos);

  auto cfg = Config::Load("engine", Options(), {"--port=abc", "--grace=soon"}, {});
  ASSERT_TRUE(cfg.ok());
  EXPECT_NE(cfg->GetInt("port").status().message().find("not an integer"), absl::string_view::npos);
  EXPECT_NE(cfg->GetDuration("grace").status().message().find("not a duration"), absl::string_view::npos);
}

TEST(ConfigTest, HelpReturnsUsage) {
  auto cfg = Config::Load("engine", Options(), {"--help"}, {});
  ASSERT_TRUE(absl::IsNotFound(cfg.status()));
  EXPECT_NE(cfg.status().message().find("--model-dir"), absl::string_view::npos);
  EXPECT_NE(cfg.status().message().find("LLMESH_ENGINE_NAME"), absl::string_view::npos);
}

}  // namespace
}  // namespace llmesh
