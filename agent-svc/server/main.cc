// llmesh-agent: tool-using agents.
#include "llmesh/rpc/service_main.h"
#include "llmesh/v1/agent.grpc.pb.h"

namespace {

// Methods not yet overridden answer UNIMPLEMENTED (see the issue tracker).
class Module : public llmesh::rpc::ServiceModule {
 public:
  absl::Status Init(const llmesh::Config&, llmesh::rpc::ServerRunner& runner) override {
    runner.AddService(&service_, llmesh::v1::AgentService::service_full_name());
    return absl::OkStatus();
  }

 private:
  llmesh::v1::AgentService::Service service_;
};

}  // namespace

int main(int argc, char** argv) {
  Module module;
  return llmesh::rpc::RunService(argc, argv, "agent", "127.0.0.1:50054", module);
}
