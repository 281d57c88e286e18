// Fewer gRPC callback threads, for a process whose reactions never block.
//
// gRPC 1.51 (Debian's) runs every callback-API reaction on its "nexting"
// threads: max(2, cores / 2) of them, all polling one epoll set. Each time
// epoll wakes one, it hands the poller role to another idle one (futex wake,
// two context switches), and a completion queued by one wakes another to run
// it. At a message per token that hand-off is most of a gateway's CPU:
// profiled under bench_gateway, context switches and futex calls were half of
// it, and with one thread doing the same work the gateway's CPU per token
// fell by a third and its context switches by 60%.
//
// CallbackThreadPark keeps `keep` of those threads and parks the rest, each
// inside a callback of its own (a health Check over the server's in-process
// channel) until Release. Only for processes that never block in a reaction
// (the gRPC contract anyway): the kept thread(s) do all the callback work.
// When the threads cannot be told apart (another gRPC build names them
// differently) nothing is parked.
#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

namespace llmesh::rpc {

class CallbackThreadPark {
 public:
  // `server` is started and serves grpc.health.v1 (every ServerRunner does).
  static std::unique_ptr<CallbackThreadPark> Start(grpc::Server& server, int keep);
  ~CallbackThreadPark();  // Release()

  // Lets the parked threads go. Before the server and the last channel are
  // destroyed: gRPC joins these threads when its last user goes.
  void Release();
  int parked() const;

  struct State;

 private:
  explicit CallbackThreadPark(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// Threads of this process named "nexting_thread" (gRPC's callback threads).
int CountCallbackThreads();

}  // namespace llmesh::rpc
