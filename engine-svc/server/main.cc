// llmesh-engine: model execution.
#include "llmesh/rpc/service_main.h"
#include "llmesh/v1/engine.grpc.pb.h"

namespace {

// Methods not yet overridden answer UNIMPLEMENTED (see the issue tracker).
class Module : public llmesh::rpc::ServiceModule {
 public:
  absl::Status Init(const llmesh::Config&, llmesh::rpc::ServerRunner& runner) override {
    runner.AddService(&service_, llmesh::v1::EngineService::service_full_name());
    return absl::OkStatus();
  }

 private:
  llmesh::v1::EngineService::Service service_;
};

}  // namespace

int main(int argc, char** argv) {
  Module module;
  return llmesh::rpc::RunService(argc, argv, "engine", "127.0.0.1:50052", module);
}
