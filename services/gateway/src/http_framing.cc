#include "llmesh/gateway/http_framing.h"

#include <cctype>

#include "absl/strings/str_cat.h"

namespace llmesh::gateway {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr size_t kMaxChunkLine = 1024;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// Digits only (no sign, no spaces inside); false on anything else. *out
// saturates above `cap` so 2^64+1 reads as "too large", not as garbage.
bool ParseDecimal(std::string_view s, uint64_t cap, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (v <= cap) v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

bool ParseHex(std::string_view s, uint64_t cap, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0'
            : (c >= 'a' && c <= 'f')                            ? c - 'a' + 10
            : (c >= 'A' && c <= 'F')                            ? c - 'A' + 10
                                                                : -1;
    if (d < 0) return false;
    if (v <= cap) v = v * 16 + static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

}  // namespace

RequestFrame RequestFramer::Error(int status, std::string msg) {
  frame_.state = RequestFrame::State::kError;
  frame_.http_status = status;
  frame_.error = std::move(msg);
  return frame_;
}

RequestFrame RequestFramer::ParseHead(std::string_view head) {
  frame_.head_bytes = head.size();
  bool has_length = false, has_encoding = false;
  size_t pos = head.find(kCrlf) + kCrlf.size();  // past the request line
  while (pos < head.size()) {
    size_t end = head.find(kCrlf, pos);
    std::string_view line = head.substr(pos, end - pos);
    pos = end + kCrlf.size();
    size_t colon = line.find(':');
    if (line.empty() || colon == std::string_view::npos) continue;  // the blank line; httplib judges the rest
    std::string_view name = line.substr(0, colon);
    std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Content-Length")) {
      uint64_t n = 0;
      if (!ParseDecimal(value, limits_.max_body_bytes, &n))
        return Error(400, absl::StrCat("Content-Length must be a non-negative integer; got '", std::string(value), "'"));
      if (has_length && n != content_length_) return Error(400, "conflicting Content-Length headers");
      if (n > limits_.max_body_bytes)
        return Error(413, absl::StrCat("the request body is too large (Content-Length ", std::string(value), "; at most ",
                                       limits_.max_body_bytes, " bytes)"));
      has_length = true;
      content_length_ = n;
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      if (!EqualsIgnoreCase(value, "chunked"))
        return Error(400, absl::StrCat("Transfer-Encoding '", std::string(value), "' is not supported (only chunked)"));
      has_encoding = true;
    } else if (EqualsIgnoreCase(name, "Expect")) {
      frame_.expect_continue = EqualsIgnoreCase(value, "100-continue");
    }
  }
  // Both would let a proxy in front and this server disagree on where the
  // request ends (request smuggling).
  if (has_length && has_encoding) return Error(400, "both Content-Length and Transfer-Encoding are set");
  chunked_ = has_encoding;
  next_chunk_ = head.size();
  if (!chunked_) frame_.total_bytes = head.size() + content_length_;
  if (!chunked_ && content_length_ == 0) frame_.expect_continue = false;
  return frame_;
}

RequestFrame RequestFramer::Chunked(std::string_view data) {
  while (true) {
    size_t eol = data.find(kCrlf, next_chunk_);
    if (eol == std::string_view::npos) {
      if (data.size() - next_chunk_ > kMaxChunkLine) return Error(400, "a chunk-size line is too long");
      return frame_;
    }
    std::string_view line = data.substr(next_chunk_, eol - next_chunk_);
    line = line.substr(0, line.find(';'));  // chunk extensions
    uint64_t size = 0;
    if (!ParseHex(Trim(line), limits_.max_body_bytes, &size))
      return Error(400, "malformed chunked request body");
    if (size > limits_.max_body_bytes - body_bytes_)
      return Error(413, absl::StrCat("the request body is too large (at most ", limits_.max_body_bytes, " bytes)"));
    size_t data_at = eol + kCrlf.size();
    if (size == 0) {  // the last chunk, then trailer lines up to a blank one
      size_t end = data.substr(data_at, kCrlf.size()) == kCrlf ? data_at : data.find("\r\n\r\n", data_at);
      if (end == std::string_view::npos) {
        if (data.size() - data_at > limits_.max_head_bytes) return Error(431, "chunked trailers are too large");
        return frame_;
      }
      frame_.total_bytes = end + (end == data_at ? 2 : 4);
      frame_.state = RequestFrame::State::kComplete;
      return frame_;
    }
    if (data.size() < data_at + size + kCrlf.size()) return frame_;
    if (data.substr(data_at + size, kCrlf.size()) != kCrlf) return Error(400, "malformed chunked request body");
    body_bytes_ += size;
    next_chunk_ = data_at + size + kCrlf.size();
  }
}

RequestFrame RequestFramer::Update(std::string_view data) {
  if (frame_.state != RequestFrame::State::kIncomplete) return frame_;
  if (frame_.head_bytes == 0) {
    size_t from = searched_ > 3 ? searched_ - 3 : 0;
    size_t end = data.find("\r\n\r\n", from);
    if (end == std::string_view::npos || end + 4 > limits_.max_head_bytes) {
      if (data.size() > limits_.max_head_bytes)
        return Error(431, absl::StrCat("the request head is larger than ", limits_.max_head_bytes, " bytes"));
      searched_ = data.size();
      return frame_;
    }
    if (ParseHead(data.substr(0, end + 4)).state == RequestFrame::State::kError) return frame_;
  }
  if (chunked_) return Chunked(data);
  if (data.size() >= frame_.total_bytes) frame_.state = RequestFrame::State::kComplete;
  return frame_;
}

}  // namespace llmesh::gateway
