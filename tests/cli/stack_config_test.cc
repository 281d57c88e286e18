// The stack file as `llmesh up` reads it: where the services keep their data
// and whether the file names a cluster token.
#include "stack_config.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace llmesh::cli {
namespace {

std::string WriteStackFile(const std::string& body) {
  std::string dir = ::testing::TempDir() + "/stack_config_test";
  std::filesystem::create_directories(dir);
  std::string path = dir + "/stack.yaml";
  std::ofstream(path) << body;
  return path;
}

TEST(StackConfigTest, RelativeDataDirectoriesLiveInTheRunDirectory) {
  auto cfg = LoadStackConfig(WriteStackFile("stack: {run_dir: /tmp/llmesh-run}\n"
                                            "agent: {data_dir: /srv/agent}\n"),
                             "", 0, "");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->rag_data_dir, "/tmp/llmesh-run/data/rag");  // the default, data/rag
  EXPECT_EQ(cfg->agent_data_dir, "/srv/agent");              // absolute: as written
  EXPECT_FALSE(cfg->cluster_token_in_file);
}

TEST(StackConfigTest, NoticesAClusterTokenInTheFile) {
  auto cfg = LoadStackConfig(WriteStackFile("common: {cluster_token_file: /etc/llmesh/token}\n"), "", 0, "");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->cluster_token_in_file);
}

}  // namespace
}  // namespace llmesh::cli
