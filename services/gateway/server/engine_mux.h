// The gateway's GenerateMux stream to one engine worker (engine.proto): the
// generations of every request routed there share one stream, so a decode
// step of N sequences reaches the gateway as one message (one read, one
// window update, one callback) instead of N. Profiling the gateway at one
// token per message showed gRPC's per-message work (the read's wake-up and
// poller hand-off, the window update it writes back, the completion) costing
// far more CPU than the tokens; this is the part of it that can be shared.
//
// Each generation gets an id and a Listener that hears its messages (the
// engine's GenerateResponse, as under Generate) and then exactly one OnDone
// with the status a Generate RPC would have ended with. The stream opens on
// the first Start and again after it ends; when it breaks, every generation on
// it ends with its status (UNAVAILABLE when the worker went away), so the
// caller's retry and failure handling stay as they were. A worker that does
// not know GenerateMux answers UNIMPLEMENTED once; Start then says so and the
// caller uses Generate.
//
// Deadlines: each generation carries its own (the engine stops the work when
// it passes) and an alarm here ends it with DEADLINE_EXCEEDED even if the
// engine never answers, as a per-call deadline would.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include <grpcpp/alarm.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "llmesh/v1/engine.grpc.pb.h"

namespace llmesh::gateway {

class EngineMux : public std::enable_shared_from_this<EngineMux> {
 public:
  // Called on gRPC threads, never under the mux's lock, in order for one generation.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnMessage(v1::GenerateResponse msg) = 0;
    virtual void OnDone(const grpc::Status& status) = 0;
  };

  explicit EngineMux(std::shared_ptr<v1::EngineService::Stub> stub);
  ~EngineMux();

  // Starts a generation on the worker; the id is for Cancel. UNIMPLEMENTED:
  // the worker does not speak GenerateMux (use Generate); UNAVAILABLE after Close.
  absl::StatusOr<uint64_t> Start(v1::GenerateRequest request, absl::Time deadline,
                                 std::shared_ptr<Listener> listener);
  // Stops generation `id` (the engine frees its sequence). Its listener gets
  // no OnDone, at most a message already on its way. Ended ids are ignored.
  void Cancel(uint64_t id);
  // Gateway shutdown: cancels the stream (running generations end CANCELLED)
  // and waits up to `wait` for it to end.
  void Close(absl::Duration wait);

 private:
  class Stream;
  struct Entry {
    std::shared_ptr<Listener> listener;
    std::shared_ptr<Stream> stream;
    // Shared so Start can Set it outside the lock (an alarm may fire inline).
    std::shared_ptr<grpc::Alarm> deadline;
  };

  // From the stream's reactor.
  void Dispatch(v1::GenerateMuxResponse& msg);
  void StreamEnded(Stream* stream, const grpc::Status& status, bool answered);
  // From a deadline alarm.
  void Expire(uint64_t id);
  // Removes generation `id` and tells the engine to stop it; false if it had ended.
  bool Remove(uint64_t id, std::shared_ptr<Listener>* listener);

  const std::shared_ptr<v1::EngineService::Stub> stub_;
  std::mutex mu_;
  std::condition_variable ended_;
  std::shared_ptr<Stream> stream_;  // null until the next Start opens one
  int live_streams_ = 0;            // opened and not yet ended (Close waits for 0)
  uint64_t next_id_ = 1;
  std::map<uint64_t, Entry> entries_;
  bool unsupported_ = false;
  bool closed_ = false;
};

}  // namespace llmesh::gateway
