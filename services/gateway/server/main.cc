// llmesh-gateway: the public API of llmesh.
#include "llmesh/rpc/service_main.h"
#include "llmesh/v1/gateway.grpc.pb.h"

namespace {

// Methods not yet overridden answer UNIMPLEMENTED (see the issue tracker).
class Module : public llmesh::rpc::ServiceModule {
 public:
  absl::Status Init(const llmesh::Config&, llmesh::rpc::ServerRunner& runner) override {
    runner.AddService(&gateway_, llmesh::v1::Gateway::service_full_name());
    runner.AddService(&registry_, llmesh::v1::WorkerRegistry::service_full_name());
    return absl::OkStatus();
  }

 private:
  llmesh::v1::Gateway::Service gateway_;
  llmesh::v1::WorkerRegistry::Service registry_;
};

}  // namespace

int main(int argc, char** argv) {
  Module module;
  return llmesh::rpc::RunService(argc, argv, "gateway", "0.0.0.0:50050", module);
}
