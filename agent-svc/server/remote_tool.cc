#include "remote_tool.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "downstream_call.h"
#include "llmesh/rpc/channel.h"

namespace llmesh::agent {

RemoteTool::RemoteTool(v1::ToolSpec spec)
    : spec_(std::move(spec)), stub_(v1::ToolService::NewStub(rpc::CreateExternalChannel(spec_.address()))) {}

absl::StatusOr<std::string> RemoteTool::Call(const std::string& arguments_json, const ToolContext& ctx) {
  v1::ToolCallRequest req;
  req.set_name(spec_.name());
  req.set_arguments_json(arguments_json);
  req.set_call_id(ctx.call_id);
  v1::ToolCallResponse resp;
  DownstreamCall call(ctx.deadline, ctx.cancel, ctx.request_id);
  grpc::Status s = stub_->Call(call.ctx(), req, &resp);
  if (!s.ok()) return FromDownstream("tool service", spec_.address(), s);
  if (!resp.error().empty()) return absl::UnknownError(resp.error());
  return resp.output();
}

absl::StatusOr<v1::ToolSpec> DescribeRemoteTool(const std::string& address, const std::string& name,
                                                absl::Time deadline, const std::string& request_id) {
  auto stub = v1::ToolService::NewStub(rpc::CreateExternalChannel(address));
  v1::DescribeToolsResponse resp;
  DownstreamCall call(deadline, nullptr, request_id);
  grpc::Status s = stub->Describe(call.ctx(), v1::DescribeToolsRequest(), &resp);
  if (!s.ok()) return FromDownstream("tool service", address, s);
  std::vector<std::string> offered;
  for (const auto& t : resp.tools()) offered.push_back(t.name());
  const v1::ToolSpec* found = nullptr;
  if (name.empty()) {
    if (resp.tools_size() != 1)
      return absl::InvalidArgumentError(absl::StrCat("the tool service at ", address, " offers ", resp.tools_size(),
                                                     " tools (", absl::StrJoin(offered, ", "), "); name one"));
    found = &resp.tools(0);
  } else {
    for (const auto& t : resp.tools())
      if (t.name() == name) found = &t;
    if (!found)
      return absl::InvalidArgumentError(absl::StrCat("the tool service at ", address, " has no tool '", name,
                                                     "' (it offers: ", absl::StrJoin(offered, ", "), ")"));
  }
  v1::ToolSpec spec = *found;
  spec.set_address(address);
  return spec;
}

}  // namespace llmesh::agent
