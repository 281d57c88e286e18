// `llmesh chat`: an interactive chat over the gateway's gRPC Chat stream.
// Tokens appear as they arrive; the history is kept for the session; Ctrl-C
// stops the current answer (the stream is cancelled, freeing the engine's
// sequence) without leaving; /reset forgets the history, /quit (or Ctrl-D)
// leaves. --once answers one prompt and exits.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "commands.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace llmesh::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void OnSigint(int) { g_interrupted.store(true); }

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

// Streams one answer to stdout; returns the text, or an error message in *error.
std::string Answer(v1::Gateway::Stub& stub, const ChatOptions& o, const std::vector<v1::ChatMessage>& history,
                   std::string* error, bool* cancelled) {
  v1::ChatRequest req;
  req.set_model(o.model);
  for (const auto& m : history) *req.add_messages() = m;
  req.mutable_sampling()->set_temperature(o.temperature);
  req.mutable_stopping()->set_max_tokens(o.max_tokens);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_s));
  if (!o.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + o.api_key);
  g_interrupted.store(false);
  std::atomic<bool> finished{false};
  // Ctrl-C during an answer cancels the stream.
  std::thread watcher([&] {
    while (!finished.load()) {
      if (g_interrupted.load()) {
        ctx.TryCancel();
        *cancelled = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  auto reader = stub.Chat(&ctx, req);
  v1::GatewayGenerateResponse resp;
  std::string text;
  while (reader->Read(&resp)) {
    if (resp.index() != 0) continue;
    text += resp.text_delta();
    std::fwrite(resp.text_delta().data(), 1, resp.text_delta().size(), stdout);
    std::fflush(stdout);
  }
  grpc::Status st = reader->Finish();
  finished.store(true);
  watcher.join();
  if (!st.ok() && !*cancelled) *error = st.error_message();
  return text;
}

int RunChat(const ChatOptions& o) {
  auto channel = rpc::CreateChannel(o.gateway);
  auto stub = v1::Gateway::NewStub(channel);
  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a Ctrl-C at the prompt interrupts the read
  sigaction(SIGINT, &sa, nullptr);

  std::vector<v1::ChatMessage> history;
  auto reset = [&] {
    history.clear();
    if (!o.system.empty()) {
      v1::ChatMessage sys;
      sys.set_role("system");
      sys.set_content(o.system);
      history.push_back(sys);
    }
  };
  reset();
  auto turn = [&](const std::string& prompt) -> bool {
    v1::ChatMessage user;
    user.set_role("user");
    user.set_content(prompt);
    history.push_back(user);
    std::string error;
    bool cancelled = false;
    std::string answer = Answer(*stub, o, history, &error, &cancelled);
    std::printf("\n");
    if (!error.empty()) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      history.pop_back();
      return false;
    }
    if (cancelled) std::printf("[stopped]\n");
    v1::ChatMessage assistant;
    assistant.set_role("assistant");
    assistant.set_content(answer);
    history.push_back(assistant);
    return true;
  };

  if (!o.once.empty()) return turn(o.once) ? 0 : 1;

  bool tty = isatty(STDIN_FILENO);
  if (tty) std::printf("llmesh chat on %s (/reset forgets, /quit leaves, Ctrl-C stops an answer)\n", o.gateway.c_str());
  while (true) {
    if (tty) {
      std::printf("> ");
      std::fflush(stdout);
    }
    std::string line;
    g_interrupted.store(false);
    if (!std::getline(std::cin, line)) {
      if (g_interrupted.load() && !std::cin.eof()) {  // Ctrl-C at the prompt: a fresh prompt
        std::cin.clear();
        std::printf("\n");
        continue;
      }
      break;  // Ctrl-D
    }
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      reset();
      std::printf("(history cleared)\n");
      continue;
    }
    turn(line);
  }
  return 0;
}

}  // namespace

void RegisterChatCommands(CLI::App& app) {
  auto* chat = app.add_subcommand("chat", "Interactive chat through the gateway (gRPC Chat stream)");
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
