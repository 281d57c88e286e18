// tokenizer.proto over the tokenizer library.
#pragma once

#include "llmesh/tokenizer/registry.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"

namespace llmesh::tokenizer {

class TokenizerServiceImpl final : public v1::TokenizerService::CallbackService {
 public:
  explicit TokenizerServiceImpl(TokenizerRegistry& registry) : registry_(registry) {}

  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx, const v1::TokenizeRequest* req,
                                     v1::TokenizeResponse* resp) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* ctx, const v1::DetokenizeRequest* req,
                                       v1::DetokenizeResponse* resp) override;
  grpc::ServerBidiReactor<v1::DetokenizeStreamRequest, v1::DetokenizeStreamResponse>* DetokenizeStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* ApplyChatTemplate(grpc::CallbackServerContext* ctx,
                                              const v1::ApplyChatTemplateRequest* req,
                                              v1::ApplyChatTemplateResponse* resp) override;
  grpc::ServerUnaryReactor* GetVocabInfo(grpc::CallbackServerContext* ctx, const v1::GetVocabInfoRequest* req,
                                         v1::VocabInfo* resp) override;

 private:
  TokenizerRegistry& registry_;
};

}  // namespace llmesh::tokenizer
