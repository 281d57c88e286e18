// GenerateMux (engine.proto): many generations over one stream, the way a
// gateway talks to a worker. A generation behaves as under Generate; what
// differs is the write: the scheduler thread only appends tokens to the
// stream's MuxBuffer, and one write carries everything appended since the last
// one. That write starts on the flusher thread (or on the gRPC thread that
// finished the previous write), never on the scheduler thread: by the time it
// runs, the rest of the decode step's tokens have joined, and the sendmsg,
// loopback delivery and peer wake-up stay off the thread that runs the model.
//
// Per stream: one write in flight; Finish only when no write is in flight, so
// the reactor is never used after it can be deleted.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "llmesh/engine/engine.h"
#include "llmesh/v1/engine.grpc.pb.h"

namespace llmesh::engine {

class MuxStream;

class MuxHub {
 public:
  MuxHub();
  ~MuxHub();  // joins the flusher; the server is shut down by then

  grpc::ServerBidiReactor<v1::GenerateMuxRequest, v1::GenerateMuxResponse>* NewReactor(
      Engine& engine, grpc::CallbackServerContext* ctx);
  // The worker is shutting down: every stream refuses new generations
  // (UNAVAILABLE, so a gateway retries elsewhere) and ends once its running
  // ones are done, so the server's drain is not held up by idle streams.
  void Drain();

  // Stream plumbing.
  void Flush(std::shared_ptr<MuxStream> stream);  // from the scheduler thread: write soon
  void Add(const std::shared_ptr<MuxStream>& stream);
  void Remove(const std::shared_ptr<MuxStream>& stream);

 private:
  void FlushLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<MuxStream>> to_flush_;
  std::set<std::shared_ptr<MuxStream>> streams_;
  bool draining_ = false;
  bool stop_ = false;
  std::thread flusher_;
};

}  // namespace llmesh::engine
