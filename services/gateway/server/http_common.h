// What the HTTP route files share: error responses, request ids, a queue from
// gRPC callback threads to the handler's thread, and Server-Sent Events.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "httplib.h"
#include "llmesh/gateway/errors.h"

namespace llmesh::gateway {

// An OpenAI error body with the status mapped once (errors.h); 429 adds
// Retry-After, 401 WWW-Authenticate.
void SendError(httplib::Response& res, const absl::Status& st, const std::string& param = "");

// The client's x-request-id when sane, else a new one.
std::string RequestIdOf(const httplib::Request& req);

inline int64_t UnixNow() { return absl::ToUnixSeconds(absl::Now()); }

// Items handed from gRPC callbacks to the HTTP handler thread, then the final
// status. Unbounded: producers are bounded by the request (a generation's
// tokens, an agent's steps).
template <typename T>
class BlockingQueue {
 public:
  void Push(T item) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(item));
    cv_.notify_all();
  }
  void Close(const absl::Status& st) {
    std::lock_guard lock(mu_);
    if (!final_) final_ = st;
    cv_.notify_all();
  }
  // Waits until something is queued or the queue is closed (or `until`).
  // Returns false on timeout.
  bool Wait(absl::Time until) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, absl::ToChronoTime(until), [this] { return !queue_.empty() || final_.has_value(); });
  }
  // Takes everything queued; `final` is set once the producer is done.
  std::deque<T> Take(std::optional<absl::Status>* final) {
    std::lock_guard lock(mu_);
    std::deque<T> out;
    out.swap(queue_);
    *final = final_;
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> queue_;
  std::optional<absl::Status> final_;
};

// Streams `queue` as Server-Sent Events on `res`: `first` / `final` are what
// the handler already took. `events` turns an item into event payloads;
// `closing` gives the payloads sent after the last item on success (before
// "[DONE]"). An error after the headers went out travels as an OpenAI error
// event. `cancel` runs when the client disconnects or `give_up` passes.
template <typename T>
void StreamSse(httplib::Response& res, std::shared_ptr<BlockingQueue<T>> queue, std::deque<T> first,
               std::optional<absl::Status> final, std::function<std::vector<std::string>(const T&)> events,
               std::function<std::vector<std::string>()> closing, std::function<void()> cancel, absl::Time give_up) {
  auto pending = std::make_shared<std::deque<T>>(std::move(first));
  auto done = std::make_shared<std::optional<absl::Status>>(std::move(final));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [queue, pending, done, events, closing, give_up](size_t, httplib::DataSink& out) {
        while (true) {
          std::string buf;
          for (const auto& item : *pending)
            for (const auto& e : events(item)) absl::StrAppend(&buf, "data: ", e, "\n\n");
          pending->clear();
          if (*done) {
            if (!(*done)->ok()) {
              absl::StrAppend(&buf, "data: ", OpenAiErrorBody(**done), "\n\n");
            } else {
              for (const auto& e : closing()) absl::StrAppend(&buf, "data: ", e, "\n\n");
              buf += "data: [DONE]\n\n";
            }
            if (!out.write(buf.data(), buf.size())) return false;
            out.done();
            return true;
          }
          if (!buf.empty()) return out.write(buf.data(), buf.size());  // false: client gone, releaser cancels
          if (!queue->Wait(std::min(give_up, absl::Now() + absl::Milliseconds(200)))) {
            if (absl::Now() >= give_up) return false;
            if (!out.is_writable()) return false;
            continue;
          }
          *pending = queue->Take(done.get());
        }
      },
      [cancel](bool success) {
        if (!success) cancel();  // client disconnected: stop the work behind the stream
      });
}

}  // namespace llmesh::gateway
