// Steady streamed-Chat load through the gateway for integration tests:
// `clients` threads, each sending one request after another until Stop(),
// every outcome recorded. A request succeeds when its stream ends OK with a
// finish reason and at least one token. Prompts differ, so routing spreads
// them by load (no prefix affinity).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::testing {

struct ChatOutcome {
  grpc::Status status;
  int tokens = 0;
  bool finished = false;
  bool ok() const { return status.ok() && finished && tokens > 0; }
};

inline ChatOutcome StreamChat(v1::Gateway::Stub& stub, int max_tokens, uint64_t seed = 1) {
  v1::ChatRequest req;
  req.set_model("stories260K");
  auto* m = req.add_messages();
  m->set_role("user");
  // A different start each time: no shared prompt prefix, so the gateway's
  // prefix affinity does not pin every request to one worker.
  m->set_content(absl::StrCat(seed, " Tell me a story"));
  req.mutable_sampling()->set_temperature(0.8f);
  req.mutable_sampling()->set_seed(seed);
  req.mutable_stopping()->set_max_tokens(max_tokens);
  req.mutable_stopping()->set_ignore_eos(true);  // every stream runs its full length
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub.Chat(&ctx, req);
  v1::GatewayGenerateResponse r;
  ChatOutcome o;
  while (reader->Read(&r)) {
    o.tokens += r.tokens_size();
    if (r.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) o.finished = true;
  }
  o.status = reader->Finish();
  return o;
}

class ChatLoad {
 public:
  ChatLoad(const std::string& gateway, int clients, int max_tokens)
      : stub_(v1::Gateway::NewStub(rpc::CreateChannel(gateway))) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, c, max_tokens] {
        for (uint64_t i = 0; !stop_.load(); ++i) Record(StreamChat(*stub_, max_tokens, c * 100000 + i));
      });
    }
  }
  ~ChatLoad() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  // Waits until `n` more requests have completed than when it was called.
  bool WaitForMore(int n, absl::Duration timeout) {
    std::unique_lock lock(mu_);
    int64_t target = ok_ + static_cast<int64_t>(failures_.size()) + n;
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                        [&] { return ok_ + static_cast<int64_t>(failures_.size()) >= target; });
  }
  int64_t ok() const {
    std::lock_guard lock(mu_);
    return ok_;
  }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  void Record(const ChatOutcome& o) {
    {
      std::lock_guard lock(mu_);
      if (o.ok()) {
        ++ok_;
      } else {
        failures_.push_back(absl::StrCat("code ", static_cast<int>(o.status.error_code()), ": ",
                                         o.status.error_message(), " (", o.tokens, " tokens, finished ",
                                         o.finished, ")"));
      }
    }
    cv_.notify_all();
  }

  std::unique_ptr<v1::Gateway::Stub> stub_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t ok_ = 0;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

}  // namespace llmesh::testing
