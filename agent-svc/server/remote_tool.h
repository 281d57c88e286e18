// Tools served by other processes (ToolService in agent.proto, any
// language). RegisterTool asks the process to Describe itself; each call is
// one ToolService.Call with the call's deadline, cancelled with the run. A
// tool's own error (ToolCallResponse.error) and a failed RPC are both errors
// of the call, which the loop turns into an observation.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "llmesh/agent/tool.h"
#include "llmesh/v1/agent.grpc.pb.h"

namespace llmesh::agent {

class RemoteTool : public Tool {
 public:
  // `spec.address()` is the ToolService's host:port.
  explicit RemoteTool(v1::ToolSpec spec);
  const v1::ToolSpec& spec() const override { return spec_; }
  absl::StatusOr<std::string> Call(const std::string& arguments_json, const ToolContext& ctx) override;

 private:
  v1::ToolSpec spec_;
  std::unique_ptr<v1::ToolService::Stub> stub_;
};

// Calls Describe on the ToolService at `address` and returns the spec of the
// tool named `name` (or of the only tool offered when `name` is empty), with
// its address set. INVALID_ARGUMENT when the name is ambiguous or unknown
// there; the RPC's error when the service cannot be reached.
absl::StatusOr<v1::ToolSpec> DescribeRemoteTool(const std::string& address, const std::string& name,
                                                absl::Time deadline, const std::string& request_id);

}  // namespace llmesh::agent
