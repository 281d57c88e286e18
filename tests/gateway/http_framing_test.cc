#include "llmesh/gateway/http_framing.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace llmesh::gateway {
namespace {

using State = RequestFrame::State;

RequestFrame Frame(std::string_view data, FramingLimits limits = {}) { return RequestFramer(limits).Update(data); }

std::string Post(const std::string& headers, const std::string& body = "") {
  return absl::StrCat("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n", headers, "\r\n", body);
}

TEST(HttpFramingTest, ContentLengthBodyCompletesExactlyAndLeavesThePipelinedRest) {
  std::string req = Post("Content-Length: 5\r\n", "hello");
  for (size_t n = 0; n < req.size(); ++n) EXPECT_EQ(Frame(req.substr(0, n)).state, State::kIncomplete) << n;
  RequestFrame f = Frame(req + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(f.state, State::kComplete);
  EXPECT_EQ(f.total_bytes, req.size());
  const std::string get = "GET /health HTTP/1.1\r\n\r\n";
  EXPECT_EQ(Frame(get + get).total_bytes, get.size());
}

TEST(HttpFramingTest, ByteByByteIsIncrementalAndAgrees) {
  std::string req = Post("Transfer-Encoding: chunked\r\n", "5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n");
  RequestFramer framer({});
  RequestFrame f;
  for (size_t n = 1; n <= req.size(); ++n) {
    f = framer.Update(std::string_view(req).substr(0, n));
    if (n < req.size()) {
      EXPECT_EQ(f.state, State::kIncomplete) << n;
    }
  }
  ASSERT_EQ(f.state, State::kComplete);
  EXPECT_EQ(f.total_bytes, req.size());
  EXPECT_EQ(Frame(Post("Transfer-Encoding: chunked\r\n", "0\r\n\r\n")).state, State::kComplete);
}

// The bad lengths: answered from the head, not after a read timeout.
TEST(HttpFramingTest, BadContentLengthIsRefusedFromTheHead) {
  for (const char* bad : {"-1", "abc", "", "1 2", "+5", "0x10"}) {
    RequestFrame f = Frame(Post(absl::StrCat("Content-Length: ", bad, "\r\n")));
    EXPECT_EQ(f.state, State::kError) << bad;
    EXPECT_EQ(f.http_status, 400) << bad;
    EXPECT_NE(f.error.find("Content-Length"), std::string::npos) << f.error;
  }
  for (const char* huge : {"18446744073709551617", "99999999999999999999999999", "8388609"}) {
    RequestFrame f = Frame(Post(absl::StrCat("Content-Length: ", huge, "\r\n")));
    EXPECT_EQ(f.state, State::kError) << huge;
    EXPECT_EQ(f.http_status, 413) << huge;
  }
  EXPECT_EQ(Frame(Post("Content-Length: 8388608\r\n")).state, State::kIncomplete);
}

TEST(HttpFramingTest, AmbiguousOrUnsupportedFramingIsRefused) {
  EXPECT_EQ(Frame(Post("Content-Length: 1\r\nContent-Length: 2\r\n")).http_status, 400);
  EXPECT_EQ(Frame(Post("Content-Length: 2\r\nContent-Length: 2\r\n", "ab")).state, State::kComplete);
  EXPECT_EQ(Frame(Post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")).http_status, 400);
  EXPECT_EQ(Frame(Post("Transfer-Encoding: gzip\r\n")).http_status, 400);
  EXPECT_EQ(Frame(Post("Transfer-Encoding: chunked\r\n", "zz\r\n")).http_status, 400);
  EXPECT_EQ(Frame(Post("Transfer-Encoding: chunked\r\n", "5\r\nhelloXX")).http_status, 400);
  FramingLimits small{.max_head_bytes = 1024, .max_body_bytes = 10};
  EXPECT_EQ(Frame(Post("Transfer-Encoding: chunked\r\n", "8\r\n12345678\r\n8\r\n"), small).http_status, 413);
  EXPECT_EQ(Frame(Post("Transfer-Encoding: chunked\r\n", "FFFFFFFFFFFFFFFFFFFF\r\n"), small).http_status, 413);
}

TEST(HttpFramingTest, OversizedHeadIs431EvenBeforeItEnds) {
  FramingLimits limits{.max_head_bytes = 1024, .max_body_bytes = 1 << 20};
  std::string head = "GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a');
  RequestFrame f = Frame(head, limits);
  EXPECT_EQ(f.state, State::kError);
  EXPECT_EQ(f.http_status, 431);
}

TEST(HttpFramingTest, ExpectContinueIsReportedForABody) {
  EXPECT_TRUE(Frame(Post("Content-Length: 5\r\nExpect: 100-continue\r\n")).expect_continue);
  EXPECT_FALSE(Frame(Post("Content-Length: 0\r\nExpect: 100-continue\r\n")).expect_continue);
  EXPECT_FALSE(Frame(Post("Content-Length: 5\r\n")).expect_continue);
}

}  // namespace
}  // namespace llmesh::gateway
