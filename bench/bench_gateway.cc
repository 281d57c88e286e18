// Gateway overhead: the same greedy streams straight from an engine worker
// and through llmesh-gateway (tokenizer round trips, detokenization, routing),
// measured in the same run, alternating, so machine noise hits both alike.
// Starts llmesh-tokenizer, llmesh-engine and llmesh-gateway as processes on
// 127.0.0.1 (binaries from --bin-dir, default: build/bin beside this one).
//
//   bench_gateway [--streams 4] [--tokens 256] [--reps 5] [--threads 1]
//
// Reports aggregate decode tokens/s, time to first token, and per-token
// latency (the gap between consecutive tokens as the client sees them)
// p50/p90 for both paths, and the gateway/direct ratios; per token: CPU time
// and context switches of each process, and tokens per message the client got.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unistd.h>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "llmesh/common/subprocess.h"
#include "llmesh/rpc/channel.h"
#include "llmesh/rpc/health.h"
#include "llmesh/v1/engine.grpc.pb.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace llmesh;

struct Args {
  std::string bin_dir, model_dir;
  int streams = 4, tokens = 256, reps = 5, threads = 1;
};

// CPU time (user + system) a process has used, in milliseconds.
double CpuMs(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream ss(line.substr(rp + 2));
  std::string field;
  double ut = 0, st = 0;
  for (int i = 3; i <= 15 && ss >> field; ++i) {
    if (i == 14) ut = std::stod(field);
    if (i == 15) st = std::stod(field);
  }
  return (ut + st) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Context switches (voluntary + involuntary) of a process's live threads: on
// a loaded machine a thread wake-up costs more than the work it wakes up for,
// and this count does not depend on how busy the machine is.
double ContextSwitches(pid_t pid) {
  double total = 0;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream f(task.path() / "status");
    std::string line;
    while (std::getline(f, line))
      if (line.find("ctxt_switches:") != std::string::npos) total += std::stod(line.substr(line.find(':') + 1));
  }
  return total;
}

struct Sample {
  double seconds = 0;
  int64_t tokens = 0;
  int64_t messages = 0;  // with at least one token: tokens / messages shows coalescing
  std::vector<double> ttft_ms, gap_ms;
};

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

std::unique_ptr<Subprocess> Start(const std::string& bin, const std::vector<std::string>& args, const std::string& dir,
                                  const std::string& name, int* port) {
  std::string port_file = dir + "/" + name + ".port";
  std::vector<std::string> argv = {bin, "--listen", "127.0.0.1:0", "--port-file", port_file, "--log-level", "warn"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Subprocess::Start(argv, dir + "/" + name + ".log");
  if (!p.ok()) {
    std::fprintf(stderr, "cannot start %s\n", bin.c_str());
    std::exit(1);
  }
  for (int i = 0; i < 1000; ++i) {
    std::ifstream f(port_file);
    if (f >> *port && *port > 0) return std::move(*p);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::fprintf(stderr, "%s did not start (see %s/%s.log)\n", name.c_str(), dir.c_str(), name.c_str());
  std::exit(1);
}

// Reads one stream; records when each token arrived.
template <typename Reader, typename Resp>
void Drain(Reader& reader, Resp& resp, Clock::time_point start, Sample& s, std::mutex& mu) {
  std::vector<double> ttft, gaps;
  int64_t n = 0, msgs = 0;
  Clock::time_point last = start;
  while (reader->Read(&resp)) {
    int k = resp.tokens_size();
    if (k == 0) continue;
    auto now = Clock::now();
    double dt = std::chrono::duration<double, std::milli>(now - last).count();
    if (n == 0) {
      ttft.push_back(dt);
      for (int i = 1; i < k; ++i) gaps.push_back(0);
    } else {
      // k tokens arrived together after dt: each waited dt/k on average.
      for (int i = 0; i < k; ++i) gaps.push_back(dt / k);
    }
    last = now;
    n += k;
    ++msgs;
  }
  auto st = reader->Finish();
  if (!st.ok()) std::fprintf(stderr, "stream failed: %s\n", st.error_message().c_str());
  std::lock_guard lock(mu);
  s.tokens += n;
  s.messages += msgs;
  s.ttft_ms.insert(s.ttft_ms.end(), ttft.begin(), ttft.end());
  s.gap_ms.insert(s.gap_ms.end(), gaps.begin(), gaps.end());
}

Sample Run(v1::Gateway::Stub* via, v1::EngineService::Stub& engine, const Args& a) {
  bool via_gateway = via != nullptr;
  Sample s;
  std::mutex mu;
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int i = 0; i < a.streams; ++i) {
    threads.emplace_back([&] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      auto t0 = Clock::now();
      if (via_gateway) {
        v1::GatewayGenerateRequest req;
        req.set_model("stories260K");
        req.set_prompt("Once upon a time");
        req.mutable_sampling()->set_temperature(0);
        req.mutable_stopping()->set_max_tokens(a.tokens);
        req.mutable_stopping()->set_ignore_eos(true);
        v1::GatewayGenerateResponse resp;
        auto reader = via->Generate(&ctx, req);
        Drain(reader, resp, t0, s, mu);
      } else {
        v1::GenerateRequest req;
        req.set_model("stories260K");
        for (int id : {1, 403, 407, 261, 378}) req.add_prompt_token_ids(id);  // "Once upon a time"
        req.mutable_sampling()->set_temperature(0);
        req.mutable_stopping()->set_max_tokens(a.tokens);
        req.mutable_stopping()->set_ignore_eos(true);
        v1::GenerateResponse resp;
        auto reader = engine.Generate(&ctx, req);
        Drain(reader, resp, t0, s, mu);
      }
    });
  }
  for (auto& t : threads) t.join();
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  fs::path self = fs::canonical("/proc/self/exe").parent_path();
  a.bin_dir = (self.parent_path() / "bin").string();
  a.model_dir = (self.parent_path().parent_path().parent_path() / "shared" / "models").string();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    int x = 0;
    if (k == "--bin-dir") a.bin_dir = v;
    else if (k == "--model-dir") a.model_dir = v;
    else if (absl::SimpleAtoi(v, &x) && k == "--streams") a.streams = x;
    else if (absl::SimpleAtoi(v, &x) && k == "--tokens") a.tokens = x;
    else if (absl::SimpleAtoi(v, &x) && k == "--reps") a.reps = x;
    else if (absl::SimpleAtoi(v, &x) && k == "--threads") a.threads = x;
    else {
      std::fprintf(stderr, "usage: %s [--streams N] [--tokens N] [--reps N] [--threads N] [--bin-dir D] [--model-dir D]\n",
                   argv[0]);
      return 2;
    }
  }
  std::string dir = fs::temp_directory_path() / ("bench-gateway-" + std::to_string(getpid()));
  fs::create_directories(dir);
  int tok_port = 0, gw_port = 0, gwl_port = 0, eng_port = 0;
  auto tok = Start(a.bin_dir + "/llmesh-tokenizer", {"--model-dir", a.model_dir, "--preload", "stories260K"}, dir,
                   "tokenizer", &tok_port);
  auto eng = Start(a.bin_dir + "/llmesh-engine",
                   {"--model-dir", a.model_dir, "--model", "stories260K", "--threads", std::to_string(a.threads),
                    "--kv-budget-mb", "64"},
                   dir, "engine", &eng_port);
  std::string eng_addr = absl::StrCat("127.0.0.1:", eng_port);
  std::vector<std::string> gw_args = {"--tokenizer", absl::StrCat("127.0.0.1:", tok_port), "--workers", eng_addr,
                                      "--http-listen", "127.0.0.1:0", "--model", "stories260K", "--health-interval",
                                      "200ms"};
  // Two gateways on the same engine: detokenizing through tokenizer-svc, and in-process.
  auto gw = Start(a.bin_dir + "/llmesh-gateway", gw_args, dir, "gateway", &gw_port);
  gw_args.insert(gw_args.end(), {"--model-dir", a.model_dir});
  auto gwl = Start(a.bin_dir + "/llmesh-gateway", gw_args, dir, "gateway-local", &gwl_port);
  auto engine = v1::EngineService::NewStub(rpc::CreateChannel(eng_addr));
  std::unique_ptr<v1::Gateway::Stub> gateways[2] = {
      v1::Gateway::NewStub(rpc::CreateChannel(absl::StrCat("127.0.0.1:", gw_port))),
      v1::Gateway::NewStub(rpc::CreateChannel(absl::StrCat("127.0.0.1:", gwl_port)))};
  if (!rpc::WaitForServing(*rpc::CreateChannel(eng_addr), "", absl::Seconds(30)).ok()) return 1;
  // A gateway routes once its health check has seen the worker.
  for (auto& g : gateways) {
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext ctx;
      v1::GatewayListModelsResponse m;
      if (g->ListModels(&ctx, {}, &m).ok() && m.models_size() > 0 && m.models(0).workers() > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  v1::Gateway::Stub* paths[3] = {nullptr, gateways[0].get(), gateways[1].get()};
  const char* names[3] = {"direct", "gateway", "gw-local"};
  for (auto* p : paths) Run(p, *engine, a);  // warm-up

  Sample acc[3];
  std::vector<double> tps[3];
  // CPU ms spent by engine, gateway(s), tokenizer during each path's runs.
  double cpu[3][3] = {};
  double csw[3][2] = {};  // engine, gateway
  pid_t pids[3][3] = {{eng->pid(), gw->pid(), tok->pid()}, {eng->pid(), gw->pid(), tok->pid()},
                      {eng->pid(), gwl->pid(), tok->pid()}};
  for (int r = 0; r < a.reps; ++r) {
    for (int p = 0; p < 3; ++p) {
      double before[3];
      for (int k = 0; k < 3; ++k) before[k] = CpuMs(pids[p][k]);
      double csw_before[2] = {ContextSwitches(pids[p][0]), ContextSwitches(pids[p][1])};
      Sample s = Run(paths[p], *engine, a);
      for (int k = 0; k < 3; ++k) cpu[p][k] += CpuMs(pids[p][k]) - before[k];
      for (int k = 0; k < 2; ++k) csw[p][k] += ContextSwitches(pids[p][k]) - csw_before[k];
      tps[p].push_back(s.tokens / s.seconds);
      acc[p].tokens += s.tokens;
      acc[p].messages += s.messages;
      acc[p].seconds += s.seconds;
      acc[p].ttft_ms.insert(acc[p].ttft_ms.end(), s.ttft_ms.begin(), s.ttft_ms.end());
      acc[p].gap_ms.insert(acc[p].gap_ms.end(), s.gap_ms.begin(), s.gap_ms.end());
    }
  }
  std::printf("stories260K, %d streams x %d tokens, %d reps, engine threads %d\n", a.streams, a.tokens, a.reps,
              a.threads);
  std::printf("%-9s %9s %9s %9s %9s %9s %9s %8s %8s %8s %7s %7s %7s\n", "path", "tok/s", "tok/s p50", "ttft p50",
              "tok p50", "tok p90", "tok p99", "cpu eng", "cpu gw", "cpu tok", "tok/msg", "csw eng", "csw gw");
  std::printf("%-9s %9s %9s %9s %9s %9s %9s %8s %8s %8s %7s %7s %7s\n", "", "", "", "ms", "ms", "ms", "ms", "us/tok",
              "us/tok", "us/tok", "", "/tok", "/tok");
  for (int p = 0; p < 3; ++p) {
    const Sample& s = acc[p];
    double t = static_cast<double>(s.tokens);
    std::printf("%-9s %9.0f %9.0f %9.3f %9.3f %9.3f %9.3f %8.1f %8.1f %8.1f %7.2f %7.2f %7.2f\n", names[p],
                s.tokens / s.seconds, Pct(tps[p], 0.5), Pct(s.ttft_ms, 0.5), Pct(s.gap_ms, 0.5), Pct(s.gap_ms, 0.9),
                Pct(s.gap_ms, 0.99), cpu[p][0] * 1000 / t, p ? cpu[p][1] * 1000 / t : 0.0,
                p == 1 ? cpu[p][2] * 1000 / t : 0.0, s.messages > 0 ? t / static_cast<double>(s.messages) : 0.0,
                csw[p][0] / t, p ? csw[p][1] / t : 0.0);
  }
  double direct = acc[0].tokens / acc[0].seconds;
  for (int p = 1; p < 3; ++p)
    std::printf("%-9s vs direct: throughput %.3f, added per-token latency p50 %+.3f ms, added TTFT p50 %+.3f ms\n",
                names[p], (acc[p].tokens / acc[p].seconds) / direct, Pct(acc[p].gap_ms, 0.5) - Pct(acc[0].gap_ms, 0.5),
                Pct(acc[p].ttft_ms, 0.5) - Pct(acc[0].ttft_ms, 0.5));
  for (auto* p : {gw.get(), gwl.get(), eng.get(), tok.get()}) p->Signal(SIGTERM);
  for (auto* p : {gw.get(), gwl.get(), eng.get(), tok.get()}) (void)p->Wait(absl::Seconds(15));
  fs::remove_all(dir);
  return 0;
}
