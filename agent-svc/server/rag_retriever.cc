#include "rag_retriever.h"

#include "absl/strings/str_cat.h"
#include "downstream_call.h"
#include "llmesh/rpc/channel.h"

namespace llmesh::agent {

RagRetriever::RagRetriever(const std::string& target)
    : target_(target), stub_(v1::RagService::NewStub(rpc::CreateChannel(target))) {}

absl::StatusOr<v1::QueryResponse> RagRetriever::Query(const v1::QueryRequest& request, const ToolContext& ctx) {
  v1::QueryResponse resp;
  DownstreamCall call(ctx.deadline, ctx.cancel, ctx.request_id);
  grpc::Status s = stub_->Query(call.ctx(), request, &resp);
  if (!s.ok()) return FromDownstream("rag", target_, s);
  return resp;
}

}  // namespace llmesh::agent
