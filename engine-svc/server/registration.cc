#include "registration.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "llmesh/common/logging.h"
#include "llmesh/rpc/channel.h"
#include "spdlog/spdlog.h"

namespace llmesh::engine {

std::vector<OptionSpec> RegistrationOptions() {
  return {{"gateway", "", "Gateway address (host:port) to self-register with; empty: no registration"},
          {"advertise", "", "Address the gateway should use to reach this worker (default: the bound listen address)"},
          {"deregister_delay", "300ms",
           "On SIGTERM, time between deregistering from the gateway and closing the listener, so requests routed "
           "here just before still land"}};
}

GatewayRegistration::GatewayRegistration(std::string gateway, std::string advertise, Engine& engine)
    : gateway_(std::move(gateway)),
      advertise_(std::move(advertise)),
      engine_(engine),
      stub_(v1::WorkerRegistry::NewStub(rpc::CreateChannel(gateway_))) {}

GatewayRegistration::~GatewayRegistration() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GatewayRegistration::Start() { thread_ = std::thread([this] { Loop(); }); }

std::vector<std::string> GatewayRegistration::Models() const {
  std::vector<std::string> out;
  for (const auto& info : engine_.ListModels(false)) out.push_back(info.name);
  return out;
}

int32_t GatewayRegistration::Load() const {
  int32_t load = 0;
  for (const auto& info : engine_.ListModels(false)) {
    auto lm = engine_.Get(info.name);
    if (!lm.ok()) continue;
    if ((*lm)->bert_runner) {
      load += (*lm)->bert_runner->queue_depth();
      continue;
    }
    auto s = (*lm)->scheduler->Stats();
    load += s.queue_depth + s.running_sequences;
  }
  return load;
}

void GatewayRegistration::Loop() {
  bool registered = false;
  int64_t interval_ms = 1000;
  absl::Duration backoff = absl::Milliseconds(100);
  std::unique_lock lock(mu_);
  while (!stop_ && !deregistered_.load()) {
    lock.unlock();
    if (!registered) {
      v1::RegisterWorkerRequest req;
      req.set_address(advertise_);
      for (auto& m : Models()) req.add_models(m);
      v1::RegisterWorkerResponse resp;
      auto ctx = rpc::ContextWithTimeout(absl::Seconds(2));
      grpc::Status st;
      {
        std::lock_guard rpc_lock(rpc_mu_);
        if (deregistered_.load()) break;
        st = stub_->Register(ctx.get(), req, &resp);
      }
      if (st.ok()) {
        registered = true;
        backoff = absl::Milliseconds(100);
        if (resp.heartbeat_interval_ms() > 0) interval_ms = std::clamp<int64_t>(resp.heartbeat_interval_ms(), 50, 60000);
        spdlog::info("event=registered gateway={} address={} heartbeat_ms={}", gateway_, advertise_, interval_ms);
      } else {
        spdlog::debug("event=register_failed gateway={} error=\"{}\"", gateway_, st.error_message());
        backoff = std::min(backoff * 2, absl::Seconds(1));
      }
    } else {
      v1::HeartbeatRequest req;
      req.set_address(advertise_);
      for (auto& m : Models()) req.add_models(m);
      req.set_load(Load());
      v1::HeartbeatResponse resp;
      auto ctx = rpc::ContextWithTimeout(absl::Seconds(2));
      grpc::Status st;
      {
        std::lock_guard rpc_lock(rpc_mu_);
        if (deregistered_.load()) break;
        st = stub_->Heartbeat(ctx.get(), req, &resp);
      }
      if (st.ok() && !resp.known() && !deregistered_.load()) {
        spdlog::info("event=reregister gateway={}", gateway_);
        registered = false;
        lock.lock();
        continue;
      }
      if (!st.ok()) spdlog::debug("event=heartbeat_failed gateway={} error=\"{}\"", gateway_, st.error_message());
    }
    lock.lock();
    auto wait = registered ? std::chrono::milliseconds(interval_ms)
                           : std::chrono::milliseconds(absl::ToInt64Milliseconds(backoff));
    cv_.wait_for(lock, wait, [this] { return stop_ || deregistered_.load(); });
  }
}

bool GatewayRegistration::Deregister() {
  if (deregistered_.exchange(true)) return false;
  cv_.notify_all();
  v1::DeregisterWorkerRequest req;
  req.set_address(advertise_);
  v1::DeregisterWorkerResponse resp;
  std::lock_guard rpc_lock(rpc_mu_);
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(1));
  grpc::Status st = stub_->Deregister(ctx.get(), req, &resp);
  spdlog::info("event=deregistered gateway={} ok={}", gateway_, st.ok());
  return st.ok();
}

absl::StatusOr<std::shared_ptr<GatewayRegistration>> StartRegistration(const Config& config,
                                                                       rpc::ServerRunner& runner, Engine& engine) {
  std::string gateway = config.GetString("gateway");
  if (gateway.empty()) return std::shared_ptr<GatewayRegistration>();
  std::string advertise = config.GetString("advertise");
  if (advertise.empty()) {
    advertise = runner.address();
    // A wildcard listen address is not reachable as such: advertise loopback.
    if (advertise.rfind("0.0.0.0:", 0) == 0) advertise = "127.0.0.1" + advertise.substr(7);
    if (advertise.rfind("[::]:", 0) == 0) advertise = "127.0.0.1" + advertise.substr(4);
  }
  auto delay = config.GetDuration("deregister_delay");
  if (!delay.ok()) return delay.status();
  if (*delay < absl::ZeroDuration() || *delay > absl::Seconds(60))
    return absl::InvalidArgumentError("deregister_delay must be in [0s, 60s]");
  auto reg = std::make_shared<GatewayRegistration>(gateway, advertise, engine);
  std::weak_ptr<GatewayRegistration> weak = reg;
  runner.OnShutdown([weak, delay = *delay] {
    auto r = weak.lock();
    // Nothing to wait for when the gateway never heard of the goodbye (it is gone).
    if (r && r->Deregister() && delay > absl::ZeroDuration()) absl::SleepFor(delay);
  });
  reg->Start();
  return reg;
}

}  // namespace llmesh::engine
