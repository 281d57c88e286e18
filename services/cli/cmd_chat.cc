// `llmesh chat`: an interactive chat over the gateway's gRPC Chat stream.
// Tokens appear as they arrive; the history is kept for the session, its
// oldest turns dropped when the prompt and the reply would not fit the
// model's context (chat_history.h); Ctrl-C stops the current answer (the
// stream is cancelled, freeing the engine's sequence) or, at the prompt,
// gives a fresh one; /reset forgets the history, /quit (or Ctrl-D) leaves.
// --once answers one prompt and exits.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "chat_history.h"
#include "commands.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/status.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::cli {
namespace {

// SIGINT sets the flag and wakes the prompt's poll through a pipe: the signal
// may land on any of gRPC's threads, so an interrupted read() cannot be relied on.
std::atomic<bool> g_interrupted{false};
int g_wake[2] = {-1, -1};
void OnSigint(int) {
  g_interrupted.store(true);
  char c = 0;
  [[maybe_unused]] ssize_t n = write(g_wake[1], &c, 1);
}

void InstallSigint() {
  if (pipe(g_wake) != 0) return;
  for (int fd : g_wake) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

// Forgets Ctrl-Cs that came before now.
void ClearInterrupt() {
  char buf[64];
  while (g_wake[0] >= 0 && read(g_wake[0], buf, sizeof(buf)) > 0) {
  }
  g_interrupted.store(false);
}

// Lines of stdin, or the Ctrl-C that came instead.
class StdinLines {
 public:
  enum Result { kLine, kInterrupted, kEnd };
  Result Next(std::string* line) {
    while (true) {
      if (size_t nl = buf_.find('\n'); nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return kLine;
      }
      if (eof_) {
        if (buf_.empty()) return kEnd;
        line->swap(buf_);
        buf_.clear();
        return kLine;
      }
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_wake[0], POLLIN, 0}};
      if (poll(fds, g_wake[0] >= 0 ? 2 : 1, -1) < 0 && errno != EINTR) return kEnd;
      if (g_interrupted.load()) {
        buf_.clear();  // the half-typed line goes with the Ctrl-C
        return kInterrupted;
      }
      if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char chunk[4096];
      ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  std::string buf_;
  bool eof_ = false;
};

struct ChatOptions {
  std::string gateway = "127.0.0.1:50050";
  std::string model;
  std::string system;
  std::string once;
  std::string api_key;
  int max_tokens = 256;
  float temperature = 0.8f;
  int timeout_s = 300;
};

class Gateway {
 public:
  explicit Gateway(const ChatOptions& o) : o_(o), stub_(v1::Gateway::NewStub(rpc::CreateExternalChannel(o.gateway))) {}

  // The context window of the chat's model (the smallest of the gateway's
  // models when the chat names none and the gateway serves several).
  absl::StatusOr<int32_t> ContextLength() {
    grpc::ClientContext ctx;
    Prepare(ctx, 10);
    v1::GatewayListModelsResponse resp;
    grpc::Status st = stub_->ListModels(&ctx, v1::GatewayListModelsRequest(), &resp);
    if (!st.ok()) return rpc::FromGrpcStatus(st);
    int32_t n_ctx = 0;
    for (const auto& m : resp.models()) {
      if (!o_.model.empty() && m.name() != o_.model) continue;
      if (m.info().n_ctx() > 0) n_ctx = n_ctx == 0 ? m.info().n_ctx() : std::min(n_ctx, m.info().n_ctx());
    }
    if (n_ctx == 0)
      return absl::UnavailableError(absl::StrCat("the gateway serves no model", o_.model.empty() ? "" : " named ",
                                                 o_.model, " yet (is an engine worker up?)"));
    return n_ctx;
  }

  absl::StatusOr<int32_t> CountTokens(const std::string& text) {
    v1::TokenizeRequest req;
    req.set_model(o_.model);
    req.set_text(text);
    grpc::ClientContext ctx;
    Prepare(ctx, 10);
    v1::TokenizeResponse resp;
    grpc::Status st = stub_->Tokenize(&ctx, req, &resp);
    if (!st.ok()) return rpc::FromGrpcStatus(st);
    return resp.token_ids_size();
  }

  // Streams one answer to stdout. Returns its text (so far, when Ctrl-C
  // stopped it: *cancelled) and its usage in *usage.
  absl::StatusOr<std::string> Answer(const std::vector<v1::ChatMessage>& messages, int32_t max_tokens,
                                     v1::Usage* usage, bool* cancelled) {
    v1::ChatRequest req;
    req.set_model(o_.model);
    for (const auto& m : messages) *req.add_messages() = m;
    req.mutable_sampling()->set_temperature(o_.temperature);
    req.mutable_stopping()->set_max_tokens(max_tokens);
    grpc::ClientContext ctx;
    Prepare(ctx, o_.timeout_s);
    ClearInterrupt();
    std::atomic<bool> finished{false};
    std::atomic<bool> stopped{false};
    std::thread watcher([&] {
      while (!finished.load()) {
        if (g_interrupted.load()) {
          stopped.store(true);
          ctx.TryCancel();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    auto reader = stub_->Chat(&ctx, req);
    v1::GatewayGenerateResponse resp;
    std::string text;
    while (reader->Read(&resp)) {
      if (resp.index() != 0) continue;
      text += resp.text_delta();
      if (resp.has_usage()) *usage = resp.usage();
      std::fwrite(resp.text_delta().data(), 1, resp.text_delta().size(), stdout);
      std::fflush(stdout);
    }
    grpc::Status st = reader->Finish();
    finished.store(true);
    watcher.join();
    *cancelled = stopped.load();
    if (!st.ok() && !*cancelled) return rpc::FromGrpcStatus(st);
    return text;
  }

 private:
  void Prepare(grpc::ClientContext& ctx, int timeout_s) const {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
    if (!o_.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + o_.api_key);
  }

  const ChatOptions& o_;
  std::unique_ptr<v1::Gateway::Stub> stub_;
};

class Chat {
 public:
  explicit Chat(const ChatOptions& o) : o_(o), gateway_(o), history_(o.system) {}

  // One question and its answer; false (after saying why on stderr) when it failed.
  bool Turn(const std::string& question) {
    absl::Status st = Prepare(question);
    if (!st.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(st.message()).c_str());
      return false;
    }
    v1::Usage usage;
    bool cancelled = false;
    auto answer = gateway_.Answer(history_.Messages(), reply_tokens_, &usage, &cancelled);
    std::printf("\n");
    if (!answer.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(answer.status().message()).c_str());
      history_.PopBack();
      return false;
    }
    if (cancelled) std::printf("[stopped]\n");
    if (usage.prompt_tokens() > 0) history_.Measured(usage.prompt_tokens());
    auto tokens = gateway_.CountTokens(*answer);
    history_.Add("assistant", *answer, tokens.ok() ? *tokens : usage.completion_tokens());
    return true;
  }

  void Reset() { history_.Reset(); }

 private:
  // Learns the context (once), counts the question, and trims the history
  // so the prompt and the reply fit.
  absl::Status Prepare(const std::string& question) {
    if (n_ctx_ == 0) {
      auto n_ctx = gateway_.ContextLength();
      if (!n_ctx.ok()) return n_ctx.status();
      n_ctx_ = *n_ctx;
      reply_tokens_ = o_.max_tokens;
      if (reply_tokens_ > n_ctx_ / 2) {
        reply_tokens_ = n_ctx_ / 2;
        std::fprintf(stderr, "note: --max-tokens %d is over half the model's %d-token context; answers get %d\n",
                     o_.max_tokens, n_ctx_, reply_tokens_);
      }
      if (!o_.system.empty()) {
        auto sys = gateway_.CountTokens(o_.system);
        if (!sys.ok()) return sys.status();
        history_.SetSystemTokens(*sys);
      }
    }
    auto tokens = gateway_.CountTokens(question);
    if (!tokens.ok()) return tokens.status();
    history_.Add("user", question, *tokens);
    const size_t dropped_before = history_.turns_dropped();
    if (absl::Status st = history_.Fit(n_ctx_, reply_tokens_); !st.ok()) {
      history_.PopBack();
      return st;
    }
    if (history_.turns_dropped() > dropped_before && isatty(STDOUT_FILENO))
      std::printf("(the oldest turns were dropped to fit the %d-token context)\n", n_ctx_);
    return absl::OkStatus();
  }

  const ChatOptions& o_;
  Gateway gateway_;
  ChatHistory history_;
  int32_t n_ctx_ = 0;
  int32_t reply_tokens_ = 0;
};

int RunChat(const ChatOptions& o) {
  if (o.max_tokens < 1) {
    std::fprintf(stderr, "error: --max-tokens must be at least 1\n");
    return 2;
  }
  InstallSigint();
  Chat chat(o);
  if (!o.once.empty()) return chat.Turn(o.once) ? 0 : 1;

  const bool tty = isatty(STDIN_FILENO);
  if (tty)
    std::printf("llmesh chat on %s (/reset forgets the history, /quit or Ctrl-D leaves, Ctrl-C stops an answer)\n",
                o.gateway.c_str());
  StdinLines lines;
  while (true) {
    if (tty) {
      std::printf("> ");
      std::fflush(stdout);
    }
    ClearInterrupt();
    std::string line;
    auto got = lines.Next(&line);
    if (got == StdinLines::kEnd) break;
    if (got == StdinLines::kInterrupted) {  // a fresh prompt
      std::printf("\n");
      continue;
    }
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      chat.Reset();
      std::printf("(history cleared)\n");
      continue;
    }
    chat.Turn(line);
  }
  if (tty) std::printf("\n");
  return 0;
}

}  // namespace

void RegisterChatCommands(CLI::App& app) {
  auto* chat = app.add_subcommand("chat", "Interactive chat through the gateway (gRPC Chat stream)");
  chat->footer(
      "At the prompt:\n"
      "  /reset   forget the conversation (the system prompt stays)\n"
      "  /quit    leave (also /exit, or Ctrl-D)\n"
      "  Ctrl-C   stop the answer being written; at the prompt, a fresh prompt\n"
      "The oldest turns are dropped when the conversation and a --max-tokens reply would not fit the model's context.");
  static ChatOptions o;
  if (const char* key = getenv("LLMESH_API_KEY")) o.api_key = key;
  chat->add_option("--gateway", o.gateway, "Gateway gRPC address")->capture_default_str();
  chat->add_option("--model", o.model, "Model (default: the gateway's default model)");
  chat->add_option("--system", o.system, "System prompt");
  chat->add_option("--once", o.once, "Answer this one prompt and exit");
  chat->add_option("--api-key", o.api_key, "API key (default: $LLMESH_API_KEY)");
  chat->add_option("--max-tokens", o.max_tokens, "Tokens per answer at most")->capture_default_str();
  chat->add_option("--temperature", o.temperature, "Sampling temperature")->capture_default_str();
  chat->callback([] { std::exit(RunChat(o)); });
}

}  // namespace llmesh::cli
