#include "engine_mux.h"

#include <algorithm>
#include <deque>
#include <vector>

#include "llmesh/rpc/status.h"

namespace llmesh::gateway {

// One GenerateMux RPC. Owns itself from Open to OnDone (self_), so a caller
// holding a reference can always call Send: after Retire it just refuses.
// A hold keeps the RPC open for writes until it is retired (its read side
// ended, or Close) and no write is in flight.
class EngineMux::Stream : public grpc::ClientBidiReactor<v1::GenerateMuxRequest, v1::GenerateMuxResponse> {
 public:
  // Binds the call; nothing runs until the caller's StartCall (outside its
  // lock), and writes sent before that wait for it.
  static std::shared_ptr<Stream> Open(std::shared_ptr<EngineMux> mux, v1::EngineService::Stub& stub) {
    std::shared_ptr<Stream> s(new Stream(std::move(mux)));
    s->self_ = s;
    stub.async()->GenerateMux(&s->ctx_, s.get());
    s->AddHold();
    s->StartRead(&s->resp_);
    return s;
  }

  // Queues a request; false once the stream is retired (the caller's
  // generation then ends with the stream, in StreamEnded).
  bool Send(v1::GenerateMuxRequest req) {
    std::unique_lock lock(mu_);
    if (retired_) return false;
    queue_.push_back(std::move(req));
    if (writing_) return true;
    StartNextLocked(lock);
    return true;
  }
  void Cancel() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return Retire();  // OnDone follows with the status
    answered_ = true;
    mux_->Dispatch(resp_);
    StartRead(&resp_);
  }
  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    writing_ = false;
    if (!ok) retired_ = true;  // the read side fails too and reports the status
    if (retired_) {
      queue_.clear();
      lock.unlock();
      RemoveHold();
      return;
    }
    if (!queue_.empty()) StartNextLocked(lock);
  }
  void OnDone(const grpc::Status& status) override {
    auto self = std::move(self_);  // this object lives to the end of this call
    mux_->StreamEnded(this, status, answered_);
  }

 private:
  explicit Stream(std::shared_ptr<EngineMux> mux) : mux_(std::move(mux)) {}

  // gRPC may run OnWriteDone inline: StartWrite outside mu_.
  void StartNextLocked(std::unique_lock<std::mutex>& lock) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();
    StartWrite(&current_);
  }
  void Retire() {
    std::unique_lock lock(mu_);
    if (retired_) return;
    retired_ = true;
    queue_.clear();
    bool idle = !writing_;
    lock.unlock();
    if (idle) RemoveHold();  // else OnWriteDone does
  }

  std::shared_ptr<EngineMux> mux_;
  std::shared_ptr<Stream> self_;
  grpc::ClientContext ctx_;  // no deadline: the stream outlives requests; each has its own
  v1::GenerateMuxResponse resp_;
  bool answered_ = false;  // read side only
  std::mutex mu_;
  std::deque<v1::GenerateMuxRequest> queue_;
  v1::GenerateMuxRequest current_;
  bool writing_ = false;
  bool retired_ = false;
};

EngineMux::EngineMux(std::shared_ptr<v1::EngineService::Stub> stub) : stub_(std::move(stub)) {}

EngineMux::~EngineMux() = default;

absl::StatusOr<uint64_t> EngineMux::Start(v1::GenerateRequest request, absl::Time deadline,
                                          std::shared_ptr<Listener> listener) {
  v1::GenerateMuxRequest m;
  std::shared_ptr<Stream> stream;
  std::shared_ptr<grpc::Alarm> alarm;
  bool opened = false;
  {
    std::lock_guard lock(mu_);
    if (unsupported_) return absl::UnimplementedError("the engine worker does not serve GenerateMux");
    if (closed_) return absl::UnavailableError("the gateway is shutting down");
    if (!stream_) {
      stream_ = Stream::Open(shared_from_this(), *stub_);
      ++live_streams_;
      opened = true;
    }
    stream = stream_;
    uint64_t id = next_id_++;
    Entry& e = entries_[id];
    e.listener = std::move(listener);
    e.stream = stream;
    m.set_id(id);
    if (deadline != absl::InfiniteFuture()) {
      m.set_timeout_ms(std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now())));
      alarm = e.deadline = std::make_shared<grpc::Alarm>();
    }
  }
  uint64_t id = m.id();
  if (opened) stream->StartCall();
  if (alarm) {
    std::weak_ptr<EngineMux> weak = weak_from_this();
    alarm->Set(absl::ToChronoTime(deadline), [weak, id](bool fired) {
      if (auto mux = weak.lock(); mux && fired) mux->Expire(id);
    });
  }
  *m.mutable_start() = std::move(request);
  // Refused: the stream is ending, and StreamEnded ends this generation with it.
  stream->Send(std::move(m));
  return id;
}

void EngineMux::Cancel(uint64_t id) { Remove(id, nullptr); }

void EngineMux::Expire(uint64_t id) {
  std::shared_ptr<Listener> listener;
  // The engine stops too, if its own alarm has not already.
  if (Remove(id, &listener))
    listener->OnDone(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the request's deadline expired"));
}

bool EngineMux::Remove(uint64_t id, std::shared_ptr<Listener>* listener) {
  std::shared_ptr<Stream> stream;
  std::shared_ptr<grpc::Alarm> alarm;  // cancelled outside the lock
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    stream = std::move(it->second.stream);
    alarm = std::move(it->second.deadline);
    if (listener) *listener = std::move(it->second.listener);
    entries_.erase(it);
  }
  v1::GenerateMuxRequest m;
  m.set_id(id);
  m.set_cancel(true);
  stream->Send(std::move(m));
  return true;
}

void EngineMux::Dispatch(v1::GenerateMuxResponse& msg) {
  // Collected under the lock, delivered outside it, in the message's order.
  struct Delivery {
    std::shared_ptr<Listener> listener;
    v1::GenerateResponse* response = nullptr;
    bool done = false;
    grpc::Status status;
  };
  std::vector<Delivery> out;
  std::vector<std::shared_ptr<grpc::Alarm>> alarms;
  out.reserve(msg.events_size());
  {
    std::lock_guard lock(mu_);
    for (auto& ev : *msg.mutable_events()) {
      auto it = entries_.find(ev.id());
      if (it == entries_.end()) continue;  // cancelled or expired here
      Delivery d;
      d.listener = it->second.listener;
      if (ev.has_response()) d.response = ev.mutable_response();
      if (ev.done()) {
        d.done = true;
        d.status = grpc::Status(rpc::GrpcCodeFromInt(ev.status_code()), ev.status_message());
        if (it->second.deadline) alarms.push_back(std::move(it->second.deadline));
        entries_.erase(it);
      }
      out.push_back(std::move(d));
    }
  }
  for (auto& d : out) {
    if (d.response) d.listener->OnMessage(std::move(*d.response));
    if (d.done) d.listener->OnDone(d.status);
  }
}

void EngineMux::StreamEnded(Stream* stream, const grpc::Status& status, bool answered) {
  std::vector<std::shared_ptr<Listener>> ended;
  std::vector<std::shared_ptr<grpc::Alarm>> alarms;
  {
    std::lock_guard lock(mu_);
    if (stream_.get() == stream) stream_.reset();
    --live_streams_;
    // An old worker: nothing but UNIMPLEMENTED ever came back.
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED && !answered) unsupported_ = true;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.stream.get() != stream) {
        ++it;
        continue;
      }
      ended.push_back(std::move(it->second.listener));
      if (it->second.deadline) alarms.push_back(std::move(it->second.deadline));
      it = entries_.erase(it);
    }
  }
  ended_.notify_all();
  // The engine ends a stream with OK only when it has nothing running on it
  // (draining): a generation still here was sent as it closed, never started.
  grpc::Status why = status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the engine worker closed the stream")
                                 : status;
  for (auto& l : ended) l->OnDone(why);
}

void EngineMux::Close(absl::Duration wait) {
  std::shared_ptr<Stream> stream;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    stream = std::move(stream_);
  }
  if (stream) stream->Cancel();
  std::unique_lock lock(mu_);
  ended_.wait_for(lock, absl::ToChronoNanoseconds(wait), [this] { return live_streams_ == 0; });
}

}  // namespace llmesh::gateway
