#include "llmesh/agent/cancellation.h"

namespace llmesh::agent {

void Cancellation::Registration::Reset() {
  if (!owner_) return;
  // Callbacks run under the mutex, so once this returns none is running.
  std::lock_guard lock(owner_->mu_);
  owner_->callbacks_.erase(id_);
  owner_ = nullptr;
}

Cancellation::Registration& Cancellation::Registration::operator=(Registration&& o) noexcept {
  if (this != &o) {
    Reset();
    owner_ = o.owner_;
    id_ = o.id_;
    o.owner_ = nullptr;
  }
  return *this;
}

void Cancellation::Cancel() {
  std::lock_guard lock(mu_);
  if (cancelled_) return;
  cancelled_ = true;
  for (auto& [id, fn] : callbacks_) fn();
  callbacks_.clear();
  cv_.notify_all();
}

bool Cancellation::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

Cancellation::Registration Cancellation::OnCancel(std::function<void()> fn) const {
  std::lock_guard lock(mu_);
  if (cancelled_) {
    fn();
    return Registration();
  }
  uint64_t id = next_id_++;
  callbacks_.emplace(id, std::move(fn));
  return Registration(this, id);
}

bool Cancellation::WaitUntil(absl::Time until) const {
  std::unique_lock lock(mu_);
  if (until == absl::InfiniteFuture()) {
    cv_.wait(lock, [this] { return cancelled_; });
    return true;
  }
  cv_.wait_until(lock, absl::ToChronoTime(until), [this] { return cancelled_; });
  return cancelled_;
}

}  // namespace llmesh::agent
