// One generation request through the gateway: admission, retrieval (RagChat:
// rag-svc Query, chunks added to the system message), prompt (tokenizer-svc
// Tokenize or ApplyChatTemplate), routing, the engine's stream (over the
// worker's shared GenerateMux stream, engine_mux.h; Generate of its own for a
// worker without it),
// detokenization (tokenizer-svc DetokenizeStream, one stream per completion;
// or in-process when the gateway sees the model directory, see local_vocab),
// stop strings, tool calls (tool_calls.h: a call's text is held back and sent
// as `tool_calls` at the end), and the response stream to a sink (gRPC writer
// or HTTP).
//
// Every event (RPC callbacks, cancellation) runs on the generation's strand:
// a queue drained by one thread at a time, so the state below needs no locks
// and gRPC callbacks that run inline cannot re-enter it.
//
// Failures: an engine worker that fails before the first token is retried on
// another (UNAVAILABLE / RESOURCE_EXHAUSTED); one that fails mid-stream ends
// the stream with UNAVAILABLE and is marked failed. Cancel() (client gone)
// cancels the engine stream, which frees the sequence.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "llmesh/gateway/admission.h"
#include "llmesh/gateway/job.h"
#include "llmesh/gateway/metrics.h"
#include "llmesh/gateway/router.h"
#include "llmesh/gateway/stop_matcher.h"
#include "llmesh/gateway/tool_calls.h"
#include "llmesh/tokenizer/detokenizer.h"
#include "llmesh/tokenizer/registry.h"
#include "llmesh/v1/agent.grpc.pb.h"
#include "llmesh/v1/gateway.grpc.pb.h"
#include "llmesh/v1/rag.grpc.pb.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"
#include "worker_pool.h"

namespace llmesh::gateway {

// What the generations share.
struct GatewayContext {
  WorkerPool* pool = nullptr;
  Router* router = nullptr;
  Admission* admission = nullptr;
  GatewayMetrics* metrics = nullptr;
  std::shared_ptr<v1::TokenizerService::Stub> tokenizer;
  // rag-svc (Query, RagChat, collections) and agent-svc (AgentRun); null when
  // not configured, and those requests answer UNAVAILABLE.
  std::shared_ptr<v1::RagService::Stub> rag;
  std::shared_ptr<v1::AgentService::Stub> agent;
  // When set (model_dir configured), engine tokens are detokenized here with
  // the model's vocabulary instead of tokenizer-svc DetokenizeStream round trips.
  tokenizer::TokenizerRegistry* local_vocab = nullptr;
  std::string default_model;
  std::string chat_template_fallback = "chatml";
  absl::Duration request_timeout = absl::Minutes(5);
  int max_attempts = 3;
  JobLimits limits;
  // Models found to have no chat template of their own (use the fallback).
  std::mutex mu;
  std::set<std::string> no_template;
};

class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  // Called on the strand, in order; then OnFinish exactly once.
  virtual void OnResponse(v1::GatewayGenerateResponse response) = 0;
  virtual void OnFinish(const absl::Status& status) = 0;
};

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  static std::shared_ptr<Generation> Start(GatewayContext& gw, GenerateJob job, std::string request_id,
                                           absl::Time deadline, std::shared_ptr<GenerationSink> sink);
  ~Generation();
  // From any thread: the client went away or cancelled.
  void Cancel();

  // Strand plumbing, used by the RPC reactors.
  void Post(std::function<void()> fn);

  // Events (strand only). `call` tells the engine streams of one request
  // apart (retries, a fallback to Generate): a finished one's late events are dropped.
  void OnEngineMessage(int call, v1::GenerateResponse msg);
  void OnEngineDone(int call, grpc::Status status);
  void OnDetokWriteDone(int index, bool ok);
  void OnDetokDelta(int index, std::string delta);
  void OnDetokDone(int index, grpc::Status status);

 private:
  class EngineCall;
  class MuxListener;
  class DetokCall;
  struct Completion {
    DetokCall* detok = nullptr;             // valid until ReleaseDetok
    std::shared_ptr<grpc::ClientContext> detok_ctx;
    std::vector<v1::GeneratedToken> unsent;  // tokens not yet written to the detokenizer
    std::deque<std::vector<v1::GeneratedToken>> in_flight;  // per write, awaiting its delta
    bool writing = false;
    bool writes_done = false;
    bool engine_finished = false;
    v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
    v1::Usage usage;
    int32_t tokens_out = 0;
    bool done = false;
    std::unique_ptr<StopMatcher> stop;
    // Local detokenization (GatewayContext::local_vocab) instead of `detok`.
    std::shared_ptr<const tokenizer::Tokenizer> local_tok;
    std::unique_ptr<tokenizer::StreamingDetokenizer> local;
    // Tool calls (job.tool_mode): text and tokens of a call are held here.
    std::unique_ptr<ToolCallFilter> tools;
    std::vector<v1::GeneratedToken> held;
  };

  Generation(GatewayContext& gw, GenerateJob job, std::string request_id, absl::Time deadline,
             std::shared_ptr<GenerationSink> sink);
  void Begin();
  void OnAdmitted(absl::Status status);
  void Retrieve();
  void OnRetrieved(const grpc::Status& status, const v1::QueryResponse& resp);
  void ResolvePrompt();
  void ApplyTemplate(const std::string& tmpl);
  void OnPrompt(absl::StatusOr<std::vector<int32_t>> ids);
  void StartDetokenizers();
  void StartAttempt();
  void StartEngineCall(bool try_mux);
  void PumpDetok(int index);
  void PumpLocal(int index);
  // Text for `tokens` is known: stop strings, then out to the client.
  void DeliverDelta(int index, std::vector<v1::GeneratedToken> tokens, std::string delta);
  void ReleaseDetok(Completion& c);
  void CompleteIndex(int index, v1::FinishReason reason, const std::string& tail);
  void Emit(v1::GatewayGenerateResponse r, int n_tokens);
  void FinishAll(absl::Status status);
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  GatewayContext& gw_;
  GenerateJob job_;
  const std::string request_id_;
  const absl::Time deadline_;
  const absl::Time arrival_;
  std::shared_ptr<GenerationSink> sink_;

  // Strand.
  std::mutex strand_mu_;
  std::deque<std::function<void()>> strand_;
  bool draining_ = false;

  // State below: strand only.
  bool finished_ = false;
  bool cancelled_ = false;
  bool admitted_ = false;
  Admission::Ticket ticket_ = 0;
  std::shared_ptr<grpc::ClientContext> rag_ctx_;  // while retrieving
  std::vector<std::string> cited_;                // chunk ids put in the prompt
  std::vector<int32_t> prompt_;
  std::vector<Completion> completions_;
  int attempt_ = 0;
  std::set<std::string> tried_;
  std::string worker_;  // current attempt's worker ("" when none)
  bool worker_acquired_ = false;
  int call_ = 0;
  v1::GenerateRequest engine_req_;  // this attempt's, kept for a fallback to Generate
  std::shared_ptr<grpc::ClientContext> engine_ctx_;  // Generate
  std::shared_ptr<EngineMux> mux_;                   // or GenerateMux
  uint64_t mux_id_ = 0;
  bool got_first_token_ = false;
  int32_t cached_prompt_tokens_ = 0;
  absl::Time last_emit_ = absl::InfinitePast();
  int64_t completion_tokens_total_ = 0;
};

// The request id for logs and x-request-id: 16 hex digits.
std::string NewRequestId();

}  // namespace llmesh::gateway
