// Admission control: at most `max_concurrent` requests run; up to `max_queue`
// more wait in FIFO order; past that, requests are refused at once with
// RESOURCE_EXHAUSTED (HTTP 429) instead of piling up in memory. A queued
// request whose deadline passes, or that is cancelled, leaves the queue.
// Thread-safe; callbacks run outside the lock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace llmesh::gateway {

class Admission {
 public:
  // Called once: OK when admitted (the caller then owns a slot and must call
  // Release), or the reason it never will be (deadline, cancel, shutdown).
  using Callback = std::function<void(absl::Status)>;
  using Ticket = uint64_t;

  Admission(int max_concurrent, int max_queue);

  // Admits now (callback runs before Submit returns), queues, or refuses: a
  // refusal is returned (the callback is then never called). The returned
  // ticket identifies a queued request for Cancel.
  absl::Status Submit(absl::Time deadline, Callback callback, Ticket* ticket);
  // Frees a slot; admits the next queued request, if any.
  void Release();
  // Takes a queued request out (its callback gets CANCELLED). No-op when it
  // was already admitted.
  void Cancel(Ticket ticket);
  // Fails queued requests whose deadline is before `now`.
  void ExpireQueued(absl::Time now);
  // Refuses everything new and fails the queue (shutdown).
  void Close();

  int running() const;
  int queued() const;
  int max_concurrent() const { return max_concurrent_; }
  int max_queue() const { return max_queue_; }
  // Suggested Retry-After for refused requests, in seconds.
  int retry_after_seconds() const { return 1; }

 private:
  struct Waiter {
    Ticket ticket;
    absl::Time deadline;
    Callback callback;
  };
  const int max_concurrent_;
  const int max_queue_;
  mutable std::mutex mu_;
  int running_ = 0;
  bool closed_ = false;
  Ticket next_ticket_ = 1;
  std::deque<Waiter> queue_;
};

}  // namespace llmesh::gateway
