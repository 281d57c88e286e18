// The processes of a running stack, as `llmesh up` owns them: start them in
// order and wait for each to be SERVING; add or remove engine workers while
// the stack runs (scale); replace the engines one at a time (rolling
// restart); restart any process that exits on its own, with backoff (a
// process manager's job: one crash must not take the stack down); stop
// everything. Engine workers self-register with the gateway,
// so adding one is starting it, and removing one is SIGTERM: it deregisters
// (the gateway routes nothing new to it), drains its in-flight streams and
// exits. Not thread-safe: the launcher's main thread drives it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/common/subprocess.h"
#include "stack_config.h"

namespace llmesh::cli {

// Most engine workers `llmesh scale` starts.
inline constexpr int kMaxEngines = 16;

// A line of progress for the user (the launcher's stdout, a `scale` client).
using Progress = std::function<void(const std::string& line)>;

class StackRunner {
 public:
  // `bin_dir` holds the service binaries.
  StackRunner(StackConfig config, std::string bin_dir);
  ~StackRunner();

  // Starts every process of the config, waits for each to be SERVING and for
  // the gateway to see every engine (within stack.ready_timeout). On failure
  // what was started is stopped.
  absl::Status StartAll(const Progress& progress);
  // Adds engines (next free port, lowest free name) or stops the most
  // recently started ones until `n` run. Each new one is SERVING and counted
  // by the gateway before the next starts.
  absl::Status ScaleEngines(int n, const Progress& progress);
  // Rolling restart, one engine at a time: stop it (it deregisters and
  // drains; the others serve meanwhile), start it again on the same port
  // (rag and agent may name it), wait until the gateway routes to it. A lone
  // engine gets a stand-in on another port for the duration.
  absl::Status RestartEngines(const Progress& progress);
  // Checked between the steps of a long operation; true cancels what is left.
  void SetInterrupted(std::function<bool()> fn) { interrupted_ = std::move(fn); }

  // One line per process: name, address, pid, restarts, state.
  std::vector<std::string> Describe() const;
  int engines() const;
  // Notices processes that exited on their own and starts them again on the
  // same address once their backoff has passed (1 s, doubling to 30 s; back to
  // 1 s after a minute up). Call it often; it does not block.
  void Supervise(const Progress& progress);
  // SIGTERM to every process, then wait (SIGKILL after the grace). Idempotent.
  void StopAll();

  const StackConfig& config() const { return config_; }
  std::string gateway_address() const;  // host:port to connect to

 private:
  struct Running {
    StackProcess spec;
    std::unique_ptr<Subprocess> proc;  // null while waiting to be restarted
    std::string log;
    int restarts = 0;
    absl::Time started = absl::Now();
    absl::Time restart_at;
    absl::Duration backoff = kFirstBackoff;
  };
  static constexpr absl::Duration kFirstBackoff = absl::Seconds(1);
  static constexpr absl::Duration kMaxBackoff = absl::Seconds(30);
  // Up this long, a process counts as healthy again: its next crash waits kFirstBackoff.
  static constexpr absl::Duration kStableUptime = absl::Minutes(1);

  // RUN_DIR/<name>.port: written by the process once it listens.
  std::string PortFile(const StackProcess& p) const;
  absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(const StackProcess& p, const std::string& log);
  absl::Status Start(const StackProcess& p);
  absl::Status WaitServing(Running& r, absl::Time deadline);
  // Workers the gateway routes the stack's model to; -1 when it does not answer.
  int GatewayWorkers();
  absl::Status WaitGatewayWorkers(int n, absl::Time deadline);
  absl::StatusOr<StackProcess> NextEngine() const;
  // Starts an engine and waits until it is SERVING and the gateway routes to it.
  absl::Status StartEngine(const StackProcess& p, const Progress& progress);
  absl::Status AddEngine(const Progress& progress);
  // Stops procs_[index] (SIGTERM, wait, SIGKILL past the grace) and removes it.
  void StopEngine(size_t index, const Progress& progress);
  // Index in procs_ of the process named `name`; procs_.size() when none.
  size_t Find(const std::string& name) const;
  bool Interrupted() const { return interrupted_ && interrupted_(); }

  StackConfig config_;
  std::string bin_dir_;
  std::string gateway_addr_, tokenizer_addr_, rag_addr_, agent_addr_;
  std::vector<Running> procs_;  // in start order
  std::function<bool()> interrupted_;
};

// A quick bind (SO_REUSEADDR, as gRPC listens): can a server listen there now?
bool PortFree(const std::string& host, int port);
// "0.0.0.0" → "127.0.0.1": where to connect to a wildcard listener.
std::string ConnectHost(const std::string& host);

}  // namespace llmesh::cli
