// POST /v1/agents/run (body and answers: agent_json.h).
#include "agent_run.h"
#include "http_common.h"
#include "http_server.h"
#include "llmesh/gateway/agent_json.h"

namespace llmesh::gateway {

void HttpServer::AgentRoutes() {
  server_->Post("/v1/agents/run", Guard("/v1/agents/run", true, [this](const httplib::Request& req,
                                                                       httplib::Response& res, const std::string& rid) {
    std::string param;
    auto parsed = ParseAgentRunRequest(req.body, &param);
    if (!parsed.ok()) return SendError(res, parsed.status(), param);
    if (!gw_.agent)
      return SendError(res, absl::UnavailableError("agents are not configured on this gateway (set its agent address)"));
    absl::Time deadline = absl::Now() + gw_.request_timeout;
    auto run = AgentRunStream::Start(*gw_.agent, std::move(parsed->run), rid, deadline);
    const auto& steps = run->steps();
    // Wait for the first step, or the error that comes instead, to choose the status.
    absl::Time give_up = deadline + absl::Seconds(5);
    if (!steps->Wait(give_up)) {
      run->Cancel();
      return SendError(res, absl::DeadlineExceededError("no answer before the request's deadline"));
    }
    std::optional<absl::Status> final;
    auto first = steps->Take(&final);
    if (first.empty() && final && !final->ok()) return SendError(res, *final);
    if (!parsed->stream) {
      std::vector<v1::AgentStep> all(std::make_move_iterator(first.begin()), std::make_move_iterator(first.end()));
      while (!final) {
        if (!steps->Wait(give_up)) {
          run->Cancel();
          return SendError(res, absl::DeadlineExceededError("the request's deadline expired"));
        }
        for (auto& s : steps->Take(&final)) all.push_back(std::move(s));
      }
      if (!final->ok()) return SendError(res, *final);
      res.set_content(AgentRunJson(all), "application/json");
      return;
    }
    StreamSse<v1::AgentStep>(
        res, steps, std::move(first), final,
        [](const v1::AgentStep& s) { return std::vector<std::string>{AgentStepJson(s)}; },
        [] { return std::vector<std::string>{}; }, [run] { run->Cancel(); }, give_up);
  }));
}

}  // namespace llmesh::gateway
