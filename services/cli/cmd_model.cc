// `llmesh info | generate | logits`: look inside a model and run it.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "llmesh/engine/batch.h"
#include "llmesh/engine/forward.h"
#include "llmesh/engine/model.h"
#include "llmesh/engine/sampling_basic.h"
#include "llmesh/tokenizer/detokenizer.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace llmesh::cli {
namespace {

using engine::Batch;
using engine::ForwardContext;
using engine::ForwardOutput;
using engine::Model;
using engine::ThreadPool;

// Failure inside a subcommand: message on stderr, exit status 1.
[[noreturn]] void Fail(const absl::Status& s) {
  std::fprintf(stderr, "error: %s\n", std::string(s.ToString()).c_str());
  throw CLI::RuntimeError(1);
}

std::unique_ptr<Model> LoadModel(const std::string& path) {
  auto m = Model::Load(path);
  if (!m.ok()) Fail(m.status());
  return std::move(*m);
}

std::string HumanBytes(double b) {
  if (b >= 1024.0 * 1024 * 1024) return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return absl::StrFormat("%.2f MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return absl::StrFormat("%.2f KiB", b / 1024.0);
  return absl::StrFormat("%.0f B", b);
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---- info ----------------------------------------------------------------

void RunInfo(const std::string& path, bool no_tensors) {
  auto m = LoadModel(path);
  std::printf("file              %s (GGUF v%u, %s)\n", path.c_str(), m->file().version(),
              HumanBytes(static_cast<double>(m->file().file_size())).c_str());
  std::printf("%s", engine::DescribeModelParams(m->params()).c_str());
  std::printf("tied_output       %s\n", m->tied_output() ? "yes" : "no");
  if (!no_tensors) {
    std::printf("\n%-32s %-6s %-22s %12s\n", "tensor", "type", "shape", "bytes");
    for (const gguf::TensorInfo& t : m->file().tensors()) {
      std::string shape;
      for (int d = 0; d < t.n_dims; ++d) shape += absl::StrFormat("%s%d", d ? " x " : "", t.ne[d]);
      std::printf("%-32s %-6s %-22s %12zu\n", std::string(t.name).c_str(),
                  std::string(gguf::ggml_type_name(t.type)).c_str(), shape.c_str(), t.nbytes);
    }
  }
  const double bytes = static_cast<double>(m->TensorBytes());
  const double params = static_cast<double>(m->ParameterCount());
  std::printf("\ntensors           %zu\n", m->file().tensors().size());
  std::printf("parameters        %.2f M\n", params / 1e6);
  std::printf("tensor data       %s (%.2f bits per weight)\n", HumanBytes(bytes).c_str(),
              bytes * 8 / params);
  std::printf("read per token    %s\n",
              HumanBytes(static_cast<double>(m->BytesPerDecodedToken())).c_str());
}

// ---- shared by generate and logits ---------------------------------------

struct RunOptions {
  std::string model;
  std::string prompt;
  int threads = 0;
  int ctx = 0;
};

std::vector<int32_t> EncodePrompt(const tokenizer::Tokenizer& tok, const std::string& prompt) {
  auto ids = tok.Encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (!ids.ok()) Fail(ids.status());
  if (ids->empty()) Fail(absl::InvalidArgumentError("the prompt encodes to no tokens"));
  return *ids;
}

int32_t ContextSize(const Model& m, int requested, size_t need) {
  int64_t n = requested > 0 ? requested : std::min<int64_t>(m.params().n_ctx_train, 4096);
  n = std::max<int64_t>(n, 1);
  if (static_cast<int64_t>(need) > n) {
    Fail(absl::InvalidArgumentError(
        absl::StrFormat("prompt of %d tokens does not fit the context of %d", need, n)));
  }
  return static_cast<int32_t>(n);
}

// ---- generate --------------------------------------------------------------

void RunGenerate(const RunOptions& o, int n_predict, float temp, int top_k, float top_p,
                 uint64_t seed) {
  auto m = LoadModel(o.model);
  auto tok = tokenizer::Tokenizer::FromGguf(m->file());
  if (!tok.ok()) Fail(tok.status());
  const std::vector<int32_t> prompt = EncodePrompt(**tok, o.prompt);
  const int32_t n_ctx = ContextSize(*m, o.ctx, prompt.size());

  ThreadPool pool(o.threads);
  ForwardContext ctx(*m, pool);
  auto kv = engine::MakeKvCache(*m, n_ctx, 1);
  engine::BasicSampler sampler({.temperature = temp, .top_k = top_k, .top_p = top_p, .seed = seed});
  tokenizer::StreamingDetokenizer detok(**tok);

  std::fputs(o.prompt.c_str(), stdout);
  std::fflush(stdout);

  Batch batch;
  batch.AddSequence(prompt, 0, 0);
  ForwardOutput out;
  const auto t0 = std::chrono::steady_clock::now();
  if (auto s = ctx.Decode(batch, *kv, &out); !s.ok()) Fail(s);
  const auto t1 = std::chrono::steady_clock::now();

  int32_t pos = static_cast<int32_t>(prompt.size());
  int n_gen = 0;
  for (; n_gen < n_predict && pos < n_ctx; ++n_gen) {
    const int32_t next = sampler.Sample(out.Row(0));
    if ((*tok)->is_eog(next)) break;
    auto piece = detok.Push(next);
    if (!piece.ok()) Fail(piece.status());
    std::fwrite(piece->data(), 1, piece->size(), stdout);
    std::fflush(stdout);
    if (n_gen + 1 == n_predict || pos + 1 >= n_ctx) {
      ++n_gen;
      break;  // the last token needs no forward pass
    }
    batch.Clear();
    batch.Add(next, pos++, 0, true);
    if (auto s = ctx.Decode(batch, *kv, &out); !s.ok()) Fail(s);
  }
  const std::string tail = detok.Flush();
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const auto t2 = std::chrono::steady_clock::now();

  const double pp_s = Seconds(t0, t1), tg_s = Seconds(t1, t2);
  // n_gen tokens sampled, n_gen - 1 forward passes after the prefill.
  const int n_steps = std::max(0, n_gen - 1);
  std::fprintf(stderr, "\nprefill: %zu tokens in %.1f ms (%.1f tok/s)\n", prompt.size(), pp_s * 1e3,
               prompt.size() / pp_s);
  std::fprintf(stderr, "decode:  %d tokens in %.1f ms (%.1f tok/s), %d threads\n", n_gen,
               tg_s * 1e3, n_steps > 0 ? n_steps / tg_s : 0.0, pool.n_threads());
}

// ---- logits ----------------------------------------------------------------

void RunLogits(const RunOptions& o, int top) {
  auto m = LoadModel(o.model);
  auto tok = tokenizer::Tokenizer::FromGguf(m->file());
  if (!tok.ok()) Fail(tok.status());
  const std::vector<int32_t> prompt = EncodePrompt(**tok, o.prompt);
  ThreadPool pool(o.threads);
  ForwardContext ctx(*m, pool);
  auto kv = engine::MakeKvCache(*m, ContextSize(*m, o.ctx, prompt.size()), 1);
  Batch batch;
  batch.AddSequence(prompt, 0, 0);
  ForwardOutput out;
  if (auto s = ctx.Decode(batch, *kv, &out); !s.ok()) Fail(s);
  const auto logits = out.Row(0);
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const size_t k = top > 0 ? std::min<size_t>(top, ids.size()) : ids.size();
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (size_t i = 0; i < k; ++i) std::printf("%d %.6f\n", ids[i], logits[ids[i]]);
}

}  // namespace

void RegisterModelCommands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("info", "Architecture, hyperparameters and tensors of a model");
    auto path = std::make_shared<std::string>();
    auto no_tensors = std::make_shared<bool>(false);
    cmd->add_option("MODEL", *path, "GGUF model file")->required();
    cmd->add_flag("--no-tensors", *no_tensors, "Leave out the tensor table");
    cmd->callback([path, no_tensors] { RunInfo(*path, *no_tensors); });
  }
  {
    auto* cmd = app.add_subcommand("generate", "Generate text from a prompt");
    auto o = std::make_shared<RunOptions>();
    auto n = std::make_shared<int>(128);
    auto temp = std::make_shared<float>(0.8f);
    auto top_k = std::make_shared<int>(40);
    auto top_p = std::make_shared<float>(0.95f);
    auto seed = std::make_shared<uint64_t>(0);
    cmd->add_option("MODEL", o->model, "GGUF model file")->required();
    cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
    cmd->add_option("-n,--n-predict", *n, "Tokens to generate")->capture_default_str();
    cmd->add_option("--temp", *temp, "Temperature (0 = greedy)")->capture_default_str();
    cmd->add_option("--top-k", *top_k, "Top-k (0 = off)")->capture_default_str();
    cmd->add_option("--top-p", *top_p, "Top-p (1 = off)")->capture_default_str();
    cmd->add_option("--seed", *seed, "Sampling seed")->capture_default_str();
    cmd->add_option("-t,--threads", o->threads, "Threads (0 = all cores)");
    cmd->add_option("-c,--ctx", o->ctx, "Context size (default: model's, at most 4096)");
    cmd->callback([=] { RunGenerate(*o, *n, *temp, *top_k, *top_p, *seed); });
  }
  {
    auto* cmd = app.add_subcommand("logits", "Logits at the last prompt position, best first");
    auto o = std::make_shared<RunOptions>();
    auto top = std::make_shared<int>(10);
    cmd->add_option("MODEL", o->model, "GGUF model file")->required();
    cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
    cmd->add_option("--top", *top, "How many to print (0 = all)")->capture_default_str();
    cmd->add_option("-t,--threads", o->threads, "Threads (0 = all cores)");
    cmd->callback([=] { RunLogits(*o, *top); });
  }
}

}  // namespace llmesh::cli
