// engine.proto over the engine library (callback API: no thread blocks on a
// generation; the scheduler's thread feeds the streams).
#pragma once

#include <atomic>
#include <functional>

#include "generate_mux.h"
#include "llmesh/engine/engine.h"
#include "llmesh/v1/engine.grpc.pb.h"

namespace llmesh::engine {

class EngineServiceImpl final : public v1::EngineService::CallbackService {
 public:
  // on_models_changed runs after a model is loaded or unloaded (health updates).
  EngineServiceImpl(Engine& engine, std::function<void()> on_models_changed)
      : engine_(engine), on_models_changed_(std::move(on_models_changed)) {}

  grpc::ServerUnaryReactor* LoadModel(grpc::CallbackServerContext*, const v1::LoadModelRequest*,
                                      v1::LoadModelResponse*) override;
  grpc::ServerUnaryReactor* UnloadModel(grpc::CallbackServerContext*, const v1::UnloadModelRequest*,
                                        v1::UnloadModelResponse*) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext*, const v1::ListModelsRequest*,
                                       v1::ListModelsResponse*) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext*,
                                                          const v1::GenerateRequest*) override;
  grpc::ServerBidiReactor<v1::GenerateMuxRequest, v1::GenerateMuxResponse>* GenerateMux(
      grpc::CallbackServerContext* ctx) override {
    return mux_.NewReactor(engine_, ctx);
  }
  grpc::ServerUnaryReactor* OpenSession(grpc::CallbackServerContext*, const v1::OpenSessionRequest*,
                                        v1::OpenSessionResponse*) override;
  grpc::ServerUnaryReactor* Prefill(grpc::CallbackServerContext*, const v1::PrefillRequest*,
                                    v1::PrefillResponse*) override;
  grpc::ServerUnaryReactor* Decode(grpc::CallbackServerContext*, const v1::DecodeRequest*,
                                   v1::DecodeResponse*) override;
  grpc::ServerUnaryReactor* CloseSession(grpc::CallbackServerContext*, const v1::CloseSessionRequest*,
                                         v1::CloseSessionResponse*) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext*, const v1::EmbedRequest*,
                                  v1::EmbedResponse*) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext*, const v1::GetStatsRequest*,
                                     v1::EngineStats*) override;

  // Shutdown has begun: GenerateMux streams take no new generations and end
  // when their running ones are done (per-request RPCs drain in the server).
  void Drain() { mux_.Drain(); }

 private:
  Engine& engine_;
  std::function<void()> on_models_changed_;
  MuxHub mux_;
  std::atomic<int64_t> embed_requests_{0};
};

}  // namespace llmesh::engine
