// ScrubAddresses: what a client may read of an internal error.
#include "llmesh/rpc/scrub.h"

#include <gtest/gtest.h>

namespace llmesh::rpc {
namespace {

TEST(ScrubTest, RemovesAddressesAndKeepsTheRest) {
  EXPECT_EQ(ScrubAddresses("gateway 127.0.0.1:50050: max_tokens (1024) exceeds the context window of 512 tokens"),
            "gateway <address>: max_tokens (1024) exceeds the context window of 512 tokens");
  EXPECT_EQ(ScrubAddresses("failed to connect to all addresses; last error: UNKNOWN: ipv4:10.1.2.3:50061: "
                           "Failed to connect to remote host: Connection refused"),
            "failed to connect to all addresses; last error: UNKNOWN: <address>: Failed to connect to remote host: "
            "Connection refused");
  EXPECT_EQ(ScrubAddresses("ipv6:%5B::1%5D:50051 and [::1]:50051 and localhost:8080 and unix:/tmp/x.sock"),
            "<address> and <address> and <address> and <address>");
  EXPECT_EQ(ScrubAddresses("engine 10.0.0.7 busy"), "engine <address> busy");
}

TEST(ScrubTest, LeavesOrdinaryTextAlone) {
  for (const char* text : {"prompt has 563 tokens; the context holds 512", "2 + 3 = 5", "ratio 1:2 at 12:30",
                           "version 1.2.3", "limits.max_tokens is above the cap of 32768"})
    EXPECT_EQ(ScrubAddresses(text), text);
}

TEST(ScrubTest, KeepsTheCode) {
  absl::Status st = ScrubAddresses(absl::UnavailableError("agent 127.0.0.1:50061 down"));
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "agent <address> down");
  EXPECT_TRUE(ScrubAddresses(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace llmesh::rpc
