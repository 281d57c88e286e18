// The stop signal of one agent run: the client cancelled, or the server is
// shutting down. The loop polls it between steps; blocking calls (a gRPC
// stream to the engine, a remote tool call) register a callback that aborts
// them at once, so a cancel never waits for a generation to finish.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "absl/time/time.h"

namespace llmesh::agent {

class Cancellation {
 public:
  // Removes its callback on destruction; after that the callback is not
  // running and will not run.
  class Registration {
   public:
    Registration() = default;
    Registration(const Cancellation* owner, uint64_t id) : owner_(owner), id_(id) {}
    Registration(Registration&& o) noexcept : owner_(o.owner_), id_(o.id_) { o.owner_ = nullptr; }
    Registration& operator=(Registration&& o) noexcept;
    ~Registration() { Reset(); }

   private:
    void Reset();
    const Cancellation* owner_ = nullptr;
    uint64_t id_ = 0;
  };

  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // Idempotent. Runs the registered callbacks (on the calling thread).
  void Cancel();
  bool cancelled() const;

  // Runs `fn` when Cancel is called, or at once if it already was. `fn` must
  // not call back into this object. (Const: observers of a cancellation may
  // register, only its owner cancels.)
  [[nodiscard]] Registration OnCancel(std::function<void()> fn) const;

  // Sleeps until `until` or a cancel, whichever is first; true if cancelled.
  bool WaitUntil(absl::Time until) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool cancelled_ = false;
  mutable uint64_t next_id_ = 1;
  mutable std::map<uint64_t, std::function<void()>> callbacks_;
};

}  // namespace llmesh::agent
