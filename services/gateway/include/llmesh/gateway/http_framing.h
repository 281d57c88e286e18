// Where an HTTP/1.1 request ends in the bytes received so far: the head
// (request line and headers, through the blank line) and its body by
// Content-Length or chunked framing. The HTTP front (server/http_front.h)
// reads a whole request with this before a worker thread is spent on it, and
// refuses a bad one as soon as its head says so: Content-Length "-1" or
// 2^64+1 is a 400 / 413 at once, not after a read timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace llmesh::gateway {

struct FramingLimits {
  size_t max_head_bytes = 64 << 10;
  size_t max_body_bytes = 8 << 20;
};

struct RequestFrame {
  enum class State { kIncomplete, kComplete, kError };
  State state = State::kIncomplete;
  size_t head_bytes = 0;         // once the head is complete
  size_t total_bytes = 0;        // kComplete: head and body
  bool expect_continue = false;  // "Expect: 100-continue": the client waits before its body
  int http_status = 0;           // kError: 400, 413 or 431
  std::string error;             // kError: why, for the client
};

// Incremental: Update sees the request's bytes so far (a prefix that only
// grows) and resumes where it stopped, so a request that trickles in costs
// linear time in its size.
class RequestFramer {
 public:
  explicit RequestFramer(FramingLimits limits) : limits_(limits) {}

  RequestFrame Update(std::string_view data);
  // For the next request on the connection.
  void Reset() { *this = RequestFramer(limits_); }

 private:
  RequestFrame ParseHead(std::string_view head);
  RequestFrame Error(int status, std::string msg);
  RequestFrame Chunked(std::string_view data);

  FramingLimits limits_;
  RequestFrame frame_;
  size_t searched_ = 0;        // the head's end is not before this offset
  bool chunked_ = false;
  uint64_t content_length_ = 0;
  size_t next_chunk_ = 0;      // chunked: offset of the next chunk-size line
  uint64_t body_bytes_ = 0;    // chunked: data bytes so far
};

}  // namespace llmesh::gateway
