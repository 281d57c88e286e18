#include "downstream.h"

#include <condition_variable>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"
#include "spdlog/spdlog.h"

namespace llmesh::rag {
namespace {

constexpr size_t kTokenizeWave = 64;

std::unique_ptr<grpc::ClientContext> ContextFor(grpc::CallbackServerContext* parent, absl::Duration max_timeout) {
  return parent ? rpc::ChildContext(parent, max_timeout) : rpc::ContextWithTimeout(max_timeout);
}

// A downstream failure as this service reports it: an unknown model is the
// caller's mistake (INVALID_ARGUMENT), not an unknown collection (NOT_FOUND).

absl::Status FromDownstream(const char* who, const grpc::Status& s) {
  absl::Status st = rpc::FromGrpcStatus(s);
  std::string msg = absl::StrCat(who, ": ", st.message());
  if (absl::IsNotFound(st)) return absl::InvalidArgumentError(msg);
  if (absl::IsUnimplemented(st)) return absl::UnavailableError(msg);
  return absl::Status(st.code(), msg);
}

}  // namespace

Downstream::Downstream(EnginePoolOptions engines, const std::string& tokenizer_target, absl::Duration max_timeout)
    : engines_(std::move(engines)),
      tokenizer_(v1::TokenizerService::NewStub(rpc::CreateChannel(tokenizer_target))),
      max_timeout_(max_timeout) {}

absl::StatusOr<std::vector<std::vector<float>>> GrpcEmbedder::Embed(const std::string& model,
                                                                    const std::vector<std::string>& texts) {
  v1::EmbedRequest req;
  req.set_model(model);
  for (const auto& t : texts) req.add_texts(t);
  v1::EmbedResponse resp;
  std::set<std::string> tried;
  for (;;) {
    auto worker = ds_.engines().Acquire(model, tried);
    if (!worker.ok()) return worker.status();
    auto ctx = ContextFor(parent_, ds_.max_timeout());
    grpc::Status s = worker->stub().Embed(ctx.get(), req, &resp);
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      spdlog::warn("event=embed_failover worker={} error={}", worker->address(), s.error_message());
      worker->Fail();
      tried.insert(worker->address());
      resp.Clear();
      continue;
    }
    if (!s.ok()) return FromDownstream("engine", s);
    break;
  }
  std::vector<std::vector<float>> out;
  for (const auto& e : resp.embeddings()) out.emplace_back(e.values().begin(), e.values().end());
  return out;
}

absl::StatusOr<std::vector<int32_t>> GrpcTokenCounter::Count(const std::string& model,
                                                             const std::vector<std::string>& texts) {
  std::vector<int32_t> out(texts.size(), 0);
  for (size_t begin = 0; begin < texts.size(); begin += kTokenizeWave) {
    size_t end = std::min(texts.size(), begin + kTokenizeWave);
    struct Call {
      std::unique_ptr<grpc::ClientContext> ctx;
      v1::TokenizeRequest req;
      v1::TokenizeResponse resp;
      grpc::Status status;
    };
    std::vector<Call> calls(end - begin);
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = calls.size();
    for (size_t i = 0; i < calls.size(); ++i) {
      Call& c = calls[i];
      c.ctx = ContextFor(parent_, ds_.max_timeout());
      c.req.set_model(model);
      c.req.set_text(texts[begin + i]);
      ds_.tokenizer().async()->Tokenize(c.ctx.get(), &c.req, &c.resp, [&c, &mu, &cv, &pending](grpc::Status s) {
        std::lock_guard lock(mu);
        c.status = std::move(s);
        if (--pending == 0) cv.notify_one();
      });
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return pending == 0; });
    }
    for (size_t i = 0; i < calls.size(); ++i) {
      if (!calls[i].status.ok()) return FromDownstream("tokenizer", calls[i].status);
      out[begin + i] = calls[i].resp.token_ids_size();
    }
  }
  return out;
}

}  // namespace llmesh::rag
