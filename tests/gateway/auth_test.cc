#include "llmesh/gateway/auth.h"

#include <gtest/gtest.h>

#include "llmesh/gateway/errors.h"

namespace llmesh::gateway {
namespace {

TEST(ApiKeysTest, NoKeysMeansOpen) { EXPECT_TRUE(ApiKeys().Check("").ok()); }

TEST(ApiKeysTest, BearerKeyChecked) {
  ApiKeys keys({"k1", "secret-2"});
  EXPECT_TRUE(keys.Check("Bearer k1").ok());
  EXPECT_TRUE(keys.Check("bearer secret-2").ok());
  EXPECT_TRUE(absl::IsUnauthenticated(keys.Check("")));
  EXPECT_TRUE(absl::IsUnauthenticated(keys.Check("Bearer k2")));
  EXPECT_TRUE(absl::IsUnauthenticated(keys.Check("Bearer k")));
  EXPECT_TRUE(absl::IsUnauthenticated(keys.Check("k1")));
  EXPECT_TRUE(absl::IsUnauthenticated(keys.Check("Basic k1")));
}

TEST(ErrorsTest, StatusToHttp) {
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInternal), 502);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kDeadlineExceeded), 504);
  std::string body = OpenAiErrorBody(absl::InvalidArgumentError("bad \"x\""), "temperature");
  EXPECT_NE(body.find("\"type\":\"invalid_request_error\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"param\":\"temperature\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"code\":null"), std::string::npos) << body;
  // Only an unknown model is "model_not_found" (what OpenAI clients look for).
  EXPECT_NE(OpenAiErrorBody(absl::NotFoundError("model 'x' is not served")).find("\"code\":\"model_not_found\""),
            std::string::npos);
  EXPECT_NE(OpenAiErrorBody(absl::NotFoundError("collection 'x' not found")).find("\"code\":\"not_found\""),
            std::string::npos);
}

}  // namespace
}  // namespace llmesh::gateway
