#include "llmesh/gateway/admission.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace llmesh::gateway {

Admission::Admission(int max_concurrent, int max_queue)
    : max_concurrent_(max_concurrent < 1 ? 1 : max_concurrent), max_queue_(max_queue < 0 ? 0 : max_queue) {}

absl::Status Admission::Submit(absl::Time deadline, Callback callback, Ticket* ticket) {
  std::unique_lock lock(mu_);
  if (closed_) return absl::UnavailableError("the gateway is shutting down");
  Ticket t = next_ticket_++;
  if (ticket) *ticket = t;
  if (running_ < max_concurrent_ && queue_.empty()) {
    ++running_;
    lock.unlock();
    callback(absl::OkStatus());
    return absl::OkStatus();
  }
  if (static_cast<int>(queue_.size()) >= max_queue_)
    return absl::ResourceExhaustedError(absl::StrCat("the gateway is at capacity (", max_concurrent_, " running, ",
                                                     max_queue_, " queued); retry later"));
  queue_.push_back({t, deadline, std::move(callback)});
  return absl::OkStatus();
}

void Admission::Release() {
  Callback next;
  {
    std::lock_guard lock(mu_);
    if (running_ > 0) --running_;
    if (closed_ || queue_.empty() || running_ >= max_concurrent_) return;
    next = std::move(queue_.front().callback);
    queue_.pop_front();
    ++running_;
  }
  next(absl::OkStatus());
}

void Admission::Cancel(Ticket ticket) {
  Callback cb;
  {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->ticket == ticket) {
        cb = std::move(it->callback);
        queue_.erase(it);
        break;
      }
    }
  }
  if (cb) cb(absl::CancelledError("cancelled while queued"));
}

void Admission::ExpireQueued(absl::Time now) {
  std::vector<Callback> expired;
  {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->deadline < now) {
        expired.push_back(std::move(it->callback));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& cb : expired) cb(absl::DeadlineExceededError("deadline expired while waiting for admission"));
}

void Admission::Close() {
  std::deque<Waiter> waiting;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    waiting.swap(queue_);
  }
  for (auto& w : waiting) w.callback(absl::UnavailableError("the gateway is shutting down"));
}

int Admission::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

int Admission::queued() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(queue_.size());
}

}  // namespace llmesh::gateway
