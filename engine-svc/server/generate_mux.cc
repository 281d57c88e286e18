#include "generate_mux.h"

#include <map>

#include <grpcpp/alarm.h>

#include "absl/strings/str_cat.h"
#include "generate_request.h"
#include "llmesh/rpc/channel.h"  // RequestIdOf
#include "mux_buffer.h"
#include "proto_convert.h"

namespace llmesh::engine {

using MuxReactor = grpc::ServerBidiReactor<v1::GenerateMuxRequest, v1::GenerateMuxResponse>;

// One GenerateMux RPC: its generations, its buffer, its write. Shared by the
// reactor, the sinks the scheduler holds and the flusher, so it outlives
// whichever goes first; the reactor pointer is dropped at OnDone.
class MuxStream : public std::enable_shared_from_this<MuxStream> {
 public:
  MuxStream(MuxReactor* reactor, Engine& engine, MuxHub& hub, std::string fallback_request_id)
      : reactor_(reactor), engine_(engine), hub_(hub), fallback_request_id_(std::move(fallback_request_id)) {}

  // Reactor side (gRPC threads).
  void Handle(const v1::GenerateMuxRequest& req) {
    if (req.has_start()) return Start(req.id(), req.start(), req.timeout_ms());
    if (req.cancel()) Stop(req.id(), absl::CancelledError("cancelled by the client"));
  }
  // The client sent its last request: end once the running generations are.
  void ReadsDone() {
    Actions a;
    {
      std::lock_guard lock(mu_);
      reads_done_ = true;
      NextLocked(a);
    }
    Act(a);
  }
  // The RPC was cancelled (client gone, or it cancelled the stream), or a
  // write failed: stop every generation and end now.
  void CancelAll() {
    Actions a;
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      StopAllLocked(a);
      NextLocked(a);
    }
    Act(a);
  }
  void WriteDone(bool ok) {
    Actions a;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) {  // the client stopped reading
        cancelled_ = true;
        StopAllLocked(a);
      }
      NextLocked(a);
    }
    Act(a);
  }
  void Drain() {
    Actions a;
    {
      std::lock_guard lock(mu_);
      draining_ = true;
      NextLocked(a);
    }
    Act(a);
  }
  // OnDone: the reactor is about to be deleted.
  void Detach() {
    Actions a;
    {
      std::lock_guard lock(mu_);
      reactor_ = nullptr;
      StopAllLocked(a);  // normally none left; never leave work running for nobody
    }
    Act(a);
  }

  // Scheduler thread, through the sinks: append, and have a write start soon.
  void OnToken(uint64_t id, int32_t index, const SampleResult& token, bool logprobs, const tokenizer::Tokenizer& tok) {
    Actions a;
    {
      std::lock_guard lock(mu_);
      if (finish_sent_) return;
      ToProto(token, logprobs, tok, buffer_.Open(id, index).add_tokens());
      KickLocked(a, /*grpc_thread=*/false);
    }
    Act(a);
  }
  void OnFinish(uint64_t id, int32_t index, FinishReason reason, const GenerationUsage& u, const std::string& error) {
    Actions a;
    {
      std::lock_guard lock(mu_);
      if (!finish_sent_) {
        SetFinish(reason, u, &buffer_.Open(id, index));
        buffer_.Close(id, index);
      }
      auto it = gens_.find(id);
      if (it != gens_.end()) {
        Gen& g = it->second;
        if (reason == FinishReason::kError && g.status.ok()) g.status = absl::InternalError(error);
        if (++g.finished >= g.n) EndLocked(it, g.status, a);
      }
      KickLocked(a, /*grpc_thread=*/false);
    }
    Act(a);
  }

  // Flusher thread.
  void Flush() {
    Actions a;
    {
      std::lock_guard lock(mu_);
      flush_queued_ = false;
      NextLocked(a);
    }
    Act(a);
  }

 private:
  struct Gen {
    std::shared_ptr<LoadedModel> model;
    Scheduler::RequestId rid = 0;  // 0 until Submit returns
    int32_t n = 1;
    int32_t finished = 0;
    absl::Status status;       // how it ends (an error, cancel or deadline)
    bool stop_wanted = false;  // stopped before Submit returned
    // Shared so it can be Set outside the lock (an alarm may fire inline).
    std::shared_ptr<grpc::Alarm> deadline;
  };
  // Decided under mu_, done after it is released: the scheduler and gRPC may
  // call back into this stream from what Act calls.
  struct Actions {
    std::vector<std::pair<std::shared_ptr<LoadedModel>, Scheduler::RequestId>> cancels;
    std::vector<std::shared_ptr<grpc::Alarm>> alarms;  // cancelled when destroyed, outside the lock
    MuxReactor* write = nullptr;
    MuxReactor* finish = nullptr;
    grpc::Status status;
    bool flush = false;  // hand the write to the flusher
  };

  class Sink : public GenerationSink {
   public:
    Sink(std::shared_ptr<MuxStream> stream, uint64_t id, std::shared_ptr<LoadedModel> model, bool logprobs)
        : stream_(std::move(stream)), id_(id), model_(std::move(model)), logprobs_(logprobs) {}
    void OnToken(int32_t index, const SampleResult& token) override {
      stream_->OnToken(id_, index, token, logprobs_, *model_->tokenizer);
    }
    void OnFinish(int32_t index, FinishReason reason, const GenerationUsage& usage, const std::string& error) override {
      stream_->OnFinish(id_, index, reason, usage, error);
    }

   private:
    std::shared_ptr<MuxStream> stream_;
    uint64_t id_;
    std::shared_ptr<LoadedModel> model_;  // keeps the tokenizer alive
    bool logprobs_;
  };

  void Start(uint64_t id, const v1::GenerateRequest& req, int64_t timeout_ms) {
    absl::Status refused;
    {
      std::lock_guard lock(mu_);
      if (draining_) refused = absl::UnavailableError("engine worker is shutting down");
      else if (reads_done_ || cancelled_) return;
      else if (gens_.count(id)) refused = absl::InvalidArgumentError(absl::StrCat("generation id ", id, " is in use"));
      else if (timeout_ms < 0) refused = absl::InvalidArgumentError("timeout_ms must be >= 0");
    }
    if (!refused.ok()) return Refuse(id, refused);
    auto prepared = PrepareGeneration(engine_, req, fallback_request_id_);
    if (!prepared.ok()) return Refuse(id, prepared.status());
    std::shared_ptr<LoadedModel> model = prepared->model;
    {
      std::lock_guard lock(mu_);
      Gen& g = gens_[id];
      g.model = model;
      g.n = prepared->request.n;
    }
    // The scheduler may call the sink before Submit returns: the entry exists.
    auto sink = std::make_shared<Sink>(shared_from_this(), id, model, req.logprobs());
    auto rid = model->scheduler->Submit(std::move(prepared->request), std::move(sink));
    Actions a;
    std::shared_ptr<grpc::Alarm> alarm;
    {
      std::lock_guard lock(mu_);
      auto it = gens_.find(id);
      if (it != gens_.end()) {
        Gen& g = it->second;
        if (!rid.ok()) {
          EndLocked(it, rid.status(), a);
        } else {
          g.rid = *rid;
          if (g.stop_wanted) a.cancels.emplace_back(g.model, g.rid);
          else if (timeout_ms > 0) alarm = g.deadline = std::make_shared<grpc::Alarm>();
        }
      }
      KickLocked(a, /*grpc_thread=*/true);
    }
    Act(a);
    if (alarm) {
      // Like a Generate deadline: past it the work stops.
      std::weak_ptr<MuxStream> weak = weak_from_this();
      alarm->Set(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms), [weak, id](bool fired) {
        auto s = weak.lock();
        if (fired && s) s->Stop(id, absl::DeadlineExceededError("the generation's deadline expired"));
      });
    }
  }

  // Generation `id` never started: its only event is `done`.
  void Refuse(uint64_t id, const absl::Status& why) {
    Actions a;
    {
      std::lock_guard lock(mu_);
      if (finish_sent_) return;
      buffer_.Done(id, why);
      KickLocked(a, /*grpc_thread=*/true);
    }
    Act(a);
  }

  // Cancel or deadline: the scheduler frees its sequences within a step and
  // finishes it (kCancelled), which sends its `done` with `why`.
  void Stop(uint64_t id, absl::Status why) {
    Actions a;
    {
      std::lock_guard lock(mu_);
      auto it = gens_.find(id);
      if (it == gens_.end()) return;  // ended already
      StopLocked(it->second, std::move(why), a);
    }
    Act(a);
  }
  void StopLocked(Gen& g, absl::Status why, Actions& a) {
    if (g.status.ok()) g.status = std::move(why);
    if (g.rid == 0) g.stop_wanted = true;
    else a.cancels.emplace_back(g.model, g.rid);
  }
  void StopAllLocked(Actions& a) {
    for (auto& [id, g] : gens_) StopLocked(g, absl::CancelledError("the GenerateMux stream ended"), a);
  }

  void EndLocked(std::map<uint64_t, Gen>::iterator it, const absl::Status& status, Actions& a) {
    if (!finish_sent_) buffer_.Done(it->first, status);
    if (it->second.deadline) a.alarms.push_back(std::move(it->second.deadline));
    gens_.erase(it);
  }

  // Something changed: start what is due. A write due on the scheduler
  // thread goes to the flusher (unless one is in flight or queued: then its
  // OnWriteDone or the flusher picks this up); a gRPC thread starts it itself.
  void KickLocked(Actions& a, bool grpc_thread) {
    if (buffer_.empty() || grpc_thread) return NextLocked(a);  // an empty buffer may mean: Finish
    if (writing_ || flush_queued_ || finish_sent_ || !reactor_) return;
    flush_queued_ = true;
    a.flush = true;
  }

  // Starts the write or the Finish that is due. Finish never while a write is
  // in flight: until that write's OnWriteDone the reactor cannot be deleted,
  // so a StartWrite decided here always finds it alive.
  void NextLocked(Actions& a) {
    if (finish_sent_ || writing_ || !reactor_) return;
    if (cancelled_) {
      finish_sent_ = true;
      a.finish = reactor_;
      a.status = grpc::Status(grpc::StatusCode::CANCELLED, "GenerateMux stream cancelled");
      return;
    }
    if (!buffer_.empty()) {
      buffer_.TakeInto(&current_);
      writing_ = true;
      a.write = reactor_;
      return;
    }
    if ((reads_done_ || draining_) && gens_.empty()) {
      finish_sent_ = true;
      a.finish = reactor_;
      a.status = grpc::Status::OK;
    }
  }

  void Act(Actions& a) {
    for (auto& [model, rid] : a.cancels) model->scheduler->Cancel(rid);
    a.alarms.clear();
    if (a.write) a.write->StartWrite(&current_);
    if (a.finish) a.finish->Finish(a.status);
    if (a.flush) hub_.Flush(shared_from_this());
  }

  std::mutex mu_;
  MuxReactor* reactor_;
  Engine& engine_;
  MuxHub& hub_;
  const std::string fallback_request_id_;
  std::map<uint64_t, Gen> gens_;
  MuxBuffer buffer_;
  v1::GenerateMuxResponse current_;  // the write in flight; untouched until its OnWriteDone
  bool writing_ = false;
  bool flush_queued_ = false;
  bool finish_sent_ = false;
  bool reads_done_ = false;
  bool draining_ = false;
  bool cancelled_ = false;
};

namespace {

class GenerateMuxReactor : public MuxReactor {
 public:
  GenerateMuxReactor(Engine& engine, MuxHub& hub, grpc::CallbackServerContext* ctx)
      : hub_(hub), stream_(std::make_shared<MuxStream>(this, engine, hub, rpc::RequestIdOf(*ctx))) {
    StartRead(&req_);
    hub_.Add(stream_);  // may Finish at once (draining): after StartRead, which then fails
  }
  void OnReadDone(bool ok) override {
    if (!ok) return stream_->ReadsDone();
    stream_->Handle(req_);
    StartRead(&req_);
  }
  void OnWriteDone(bool ok) override { stream_->WriteDone(ok); }
  void OnCancel() override { stream_->CancelAll(); }
  void OnDone() override {
    stream_->Detach();
    hub_.Remove(stream_);
    delete this;
  }

 private:
  MuxHub& hub_;
  std::shared_ptr<MuxStream> stream_;
  v1::GenerateMuxRequest req_;
};

}  // namespace

MuxHub::MuxHub() : flusher_([this] { FlushLoop(); }) {}

MuxHub::~MuxHub() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  flusher_.join();
}

MuxReactor* MuxHub::NewReactor(Engine& engine, grpc::CallbackServerContext* ctx) {
  return new GenerateMuxReactor(engine, *this, ctx);
}

void MuxHub::Drain() {
  std::vector<std::shared_ptr<MuxStream>> streams;
  {
    std::lock_guard lock(mu_);
    draining_ = true;
    streams.assign(streams_.begin(), streams_.end());
  }
  for (auto& s : streams) s->Drain();
}

void MuxHub::Add(const std::shared_ptr<MuxStream>& stream) {
  bool draining;
  {
    std::lock_guard lock(mu_);
    streams_.insert(stream);
    draining = draining_;
  }
  if (draining) stream->Drain();
}

void MuxHub::Remove(const std::shared_ptr<MuxStream>& stream) {
  std::lock_guard lock(mu_);
  streams_.erase(stream);
}

void MuxHub::Flush(std::shared_ptr<MuxStream> stream) {
  {
    std::lock_guard lock(mu_);
    to_flush_.push_back(std::move(stream));
  }
  cv_.notify_one();
}

void MuxHub::FlushLoop() {
  std::vector<std::shared_ptr<MuxStream>> batch;
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !to_flush_.empty(); });
    if (stop_) return;
    batch.swap(to_flush_);
    lock.unlock();
    for (auto& s : batch) s->Flush();
    batch.clear();
    lock.lock();
  }
}

}  // namespace llmesh::engine
