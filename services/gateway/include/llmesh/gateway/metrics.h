// Gateway metrics in the Prometheus text format (version 0.0.4), under the
// names serving stacks use: requests by route and status, queue depth, time
// to first token, inter-token latency, tokens in/out, per-worker outstanding
// work and health. Thread-safe; no dependencies.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace llmesh::gateway {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Appends the _bucket/_sum/_count lines of `name`.
  void Render(const std::string& name, std::string* out) const;
  uint64_t count() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative), +Inf last
  double sum_ = 0;
  uint64_t total_ = 0;
};

class GatewayMetrics {
 public:
  GatewayMetrics();

  // route: "/v1/chat/completions", "grpc:Chat", ...; status: HTTP code or gRPC code name.
  void CountRequest(const std::string& route, const std::string& status);
  void ObserveTtft(double seconds) { ttft_.Observe(seconds); }
  void ObserveInterToken(double seconds) { itl_.Observe(seconds); }
  void ObserveRequestDuration(double seconds) { duration_.Observe(seconds); }
  void AddTokens(int64_t prompt, int64_t completion);

  // Gauges read at scrape time.
  struct WorkerGauge {
    std::string address;
    int outstanding = 0;
    bool healthy = false;
  };
  struct Gauges {
    int queue_depth = 0;
    int running = 0;
    std::vector<WorkerGauge> workers;
  };
  std::string Render(const Gauges& gauges) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0;
  uint64_t completion_tokens_ = 0;
  Histogram ttft_;
  Histogram itl_;
  Histogram duration_;
};

// Escapes a label value (backslash, quote, newline).
std::string PromLabel(const std::string& value);

}  // namespace llmesh::gateway
