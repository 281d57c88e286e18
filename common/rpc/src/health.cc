#include "llmesh/rpc/health.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"

namespace llmesh::rpc {

absl::StatusOr<std::string> CheckHealth(grpc::Channel& channel, const std::string& service,
                                        absl::Duration timeout) {
  // NewStub wants a shared_ptr; the caller keeps the channel alive for the call.
  std::shared_ptr<grpc::Channel> borrowed(&channel, [](grpc::Channel*) {});
  auto stub = grpc::health::v1::Health::NewStub(borrowed);
  auto ctx = ContextWithTimeout(timeout);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(ctx.get(), req, &resp);
  if (!st.ok()) return FromGrpcStatus(st);
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
}

absl::Status WaitForServing(grpc::Channel& channel, const std::string& service, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    auto st = CheckHealth(channel, service, absl::Seconds(1));
    if (st.ok() && *st == "SERVING") return absl::OkStatus();
    last = st.ok() ? *st : std::string(st.status().message());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("not SERVING after ", absl::FormatDuration(timeout), ": ", last));
}

}  // namespace llmesh::rpc
