#include "llmesh/rpc/status.h"

#include <gtest/gtest.h>

namespace llmesh::rpc {
namespace {

TEST(StatusTest, EveryCanonicalCodeRoundTrips) {
  for (int code = 0; code <= 16; ++code) {
    absl::Status in(static_cast<absl::StatusCode>(code), code == 0 ? "" : "message " + std::to_string(code));
    grpc::Status g = ToGrpcStatus(in);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(FromGrpcStatus(g), in);
  }
}

TEST(StatusTest, NamedCodesMatch) {
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("x")).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("x")).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("x")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ToGrpcStatus(absl::DeadlineExceededError("x")).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("bad temperature")).error_message(), "bad temperature");
}

// An out-of-range code can only arrive as an integer (a message field): it
// becomes UNKNOWN on the way in. (This test used to build the status with
// static_cast<grpc::StatusCode>(99), itself undefined behaviour, which UBSan
// stopped on at the first load of the code.)
TEST(StatusTest, OutOfRangeGrpcCodeBecomesUnknown) {
  for (int64_t wire : {int64_t{-1}, int64_t{17}, int64_t{99}, int64_t{1} << 40}) {
    grpc::Status weird(GrpcCodeFromInt(wire), "odd");
    EXPECT_EQ(weird.error_code(), grpc::StatusCode::UNKNOWN) << wire;
    EXPECT_EQ(FromGrpcStatus(weird).code(), absl::StatusCode::kUnknown) << wire;
    EXPECT_EQ(FromGrpcStatus(weird).message(), "odd");
  }
  for (int code = 0; code <= 16; ++code) EXPECT_EQ(static_cast<int>(GrpcCodeFromInt(code)), code);
  // A value the enum holds that is no canonical code.
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::DO_NOT_USE, "odd")).code(), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace llmesh::rpc
