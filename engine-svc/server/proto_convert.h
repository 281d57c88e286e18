// engine.proto / common.proto messages <-> engine library types.
#pragma once

#include "absl/status/statusor.h"
#include "llmesh/engine/engine.h"
#include "llmesh/v1/engine.pb.h"

namespace llmesh::engine {

// Unset proto fields take the library defaults.
SamplingConfig ToSamplingConfig(const v1::SamplingParams& p, int32_t top_logprobs);
v1::FinishReason ToProto(FinishReason r);
// The last response of a completion: finish reason, usage and timing.
void SetFinish(FinishReason reason, const GenerationUsage& u, v1::GenerateResponse* out);
void ToProto(const SampleResult& r, bool logprobs, const tokenizer::Tokenizer& tok, v1::GeneratedToken* out);
void ToProto(const LoadedModelInfo& info, v1::ModelInfo* out);
Pooling ToPooling(v1::Pooling p);

}  // namespace llmesh::engine
