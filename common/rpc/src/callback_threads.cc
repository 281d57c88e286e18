#include "llmesh/rpc/callback_threads.h"

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"

namespace llmesh::rpc {

struct CallbackThreadPark::State {
  struct Call {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
  };
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub;
  std::vector<std::unique_ptr<Call>> calls;  // alive until their callbacks return
  std::mutex mu;
  std::condition_variable cv;
  int parked = 0;
  int returned = 0;
  bool released = false;
};

int CountCallbackThreads() {
  int n = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream f(task.path() / "comm");
    std::string name;
    if (std::getline(f, name) && name == "nexting_thread") ++n;
  }
  return n;
}

std::unique_ptr<CallbackThreadPark> CallbackThreadPark::Start(grpc::Server& server, int keep) {
  auto state = std::make_shared<State>();
  std::unique_ptr<CallbackThreadPark> park(new CallbackThreadPark(state));
  // gRPC starts the threads with the first callback user and they name
  // themselves once running: count once the number holds still.
  int threads = CountCallbackThreads();
  for (int i = 0; i < 40; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    int now = CountCallbackThreads();
    if (now == threads && now >= 2) break;
    threads = now;
  }
  int to_park = threads - std::max(keep, 1);
  if (to_park <= 0) return park;
  state->channel = server.InProcessChannel(grpc::ChannelArguments());
  state->stub = grpc::health::v1::Health::NewStub(state->channel);
  // One at a time: a callback blocks the thread that runs it, so the next
  // completion can only run on a thread not yet parked.
  for (int i = 0; i < to_park; ++i) {
    state->calls.push_back(std::make_unique<State::Call>());
    State::Call& call = *state->calls.back();
    state->stub->async()->Check(&call.ctx, &call.req, &call.resp, [state](grpc::Status) {
      std::unique_lock lock(state->mu);
      ++state->parked;
      state->cv.notify_all();
      state->cv.wait(lock, [&] { return state->released; });
      ++state->returned;
      state->cv.notify_all();
    });
    std::unique_lock lock(state->mu);
    if (!state->cv.wait_for(lock, std::chrono::seconds(5), [&] { return state->parked == i + 1; })) break;
  }
  return park;
}

CallbackThreadPark::~CallbackThreadPark() { Release(); }

void CallbackThreadPark::Release() {
  std::unique_lock lock(state_->mu);
  state_->released = true;
  state_->cv.notify_all();
  // Parked callbacks that started return now; wait so the caller may tear
  // gRPC down next. (One whose call never completed holds nothing.)
  state_->cv.wait_for(lock, std::chrono::seconds(5), [&] { return state_->returned == state_->parked; });
}

int CallbackThreadPark::parked() const {
  std::lock_guard lock(state_->mu);
  return state_->parked;
}

}  // namespace llmesh::rpc
