#include "llmesh/gateway/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace llmesh::gateway {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  std::lock_guard lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++total_;
}

uint64_t Histogram::count() const {
  std::lock_guard lock(mu_);
  return total_;
}

void Histogram::Render(const std::string& name, std::string* out) const {
  std::lock_guard lock(mu_);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    absl::StrAppend(out, name, "_bucket{le=\"", absl::StrFormat("%g", bounds_[i]), "\"} ", cum, "\n");
  }
  cum += counts_.back();
  absl::StrAppend(out, name, "_bucket{le=\"+Inf\"} ", cum, "\n", name, "_sum ", absl::StrFormat("%.6f", sum_), "\n",
                  name, "_count ", total_, "\n");
}

GatewayMetrics::GatewayMetrics()
    : ttft_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      duration_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}) {}

void GatewayMetrics::CountRequest(const std::string& route, const std::string& status) {
  std::lock_guard lock(mu_);
  ++requests_[{route, status}];
}

void GatewayMetrics::AddTokens(int64_t prompt, int64_t completion) {
  std::lock_guard lock(mu_);
  if (prompt > 0) prompt_tokens_ += static_cast<uint64_t>(prompt);
  if (completion > 0) completion_tokens_ += static_cast<uint64_t>(completion);
}

std::string PromLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string GatewayMetrics::Render(const Gauges& g) const {
  std::string out;
  out += "# HELP llmesh_gateway_requests_total Requests by route and final status.\n";
  out += "# TYPE llmesh_gateway_requests_total counter\n";
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : requests_)
      absl::StrAppend(&out, "llmesh_gateway_requests_total{route=\"", PromLabel(k.first), "\",status=\"",
                      PromLabel(k.second), "\"} ", v, "\n");
    out += "# HELP llmesh_gateway_prompt_tokens_total Prompt tokens sent to engines.\n";
    out += "# TYPE llmesh_gateway_prompt_tokens_total counter\n";
    absl::StrAppend(&out, "llmesh_gateway_prompt_tokens_total ", prompt_tokens_, "\n");
    out += "# HELP llmesh_gateway_generation_tokens_total Tokens generated and returned to clients.\n";
    out += "# TYPE llmesh_gateway_generation_tokens_total counter\n";
    absl::StrAppend(&out, "llmesh_gateway_generation_tokens_total ", completion_tokens_, "\n");
  }
  out += "# HELP llmesh_gateway_queue_depth Requests waiting for admission.\n";
  out += "# TYPE llmesh_gateway_queue_depth gauge\n";
  absl::StrAppend(&out, "llmesh_gateway_queue_depth ", g.queue_depth, "\n");
  out += "# HELP llmesh_gateway_running_requests Requests admitted and running.\n";
  out += "# TYPE llmesh_gateway_running_requests gauge\n";
  absl::StrAppend(&out, "llmesh_gateway_running_requests ", g.running, "\n");
  out += "# HELP llmesh_gateway_time_to_first_token_seconds Arrival to first token sent.\n";
  out += "# TYPE llmesh_gateway_time_to_first_token_seconds histogram\n";
  ttft_.Render("llmesh_gateway_time_to_first_token_seconds", &out);
  out += "# HELP llmesh_gateway_inter_token_latency_seconds Time between tokens sent to a client.\n";
  out += "# TYPE llmesh_gateway_inter_token_latency_seconds histogram\n";
  itl_.Render("llmesh_gateway_inter_token_latency_seconds", &out);
  out += "# HELP llmesh_gateway_request_duration_seconds Arrival to last byte, generation requests.\n";
  out += "# TYPE llmesh_gateway_request_duration_seconds histogram\n";
  duration_.Render("llmesh_gateway_request_duration_seconds", &out);
  out += "# HELP llmesh_gateway_worker_outstanding Requests in flight per engine worker.\n";
  out += "# TYPE llmesh_gateway_worker_outstanding gauge\n";
  for (const auto& w : g.workers)
    absl::StrAppend(&out, "llmesh_gateway_worker_outstanding{worker=\"", PromLabel(w.address), "\"} ", w.outstanding,
                    "\n");
  out += "# HELP llmesh_gateway_worker_healthy 1 when the engine worker gets traffic.\n";
  out += "# TYPE llmesh_gateway_worker_healthy gauge\n";
  for (const auto& w : g.workers)
    absl::StrAppend(&out, "llmesh_gateway_worker_healthy{worker=\"", PromLabel(w.address), "\"} ", w.healthy ? 1 : 0,
                    "\n");
  return out;
}

}  // namespace llmesh::gateway
