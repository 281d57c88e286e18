// llmesh-tokenizer as a real process on 127.0.0.1: every RPC, and its errors.
#include <filesystem>

#include <gtest/gtest.h>

#include "llmesh/rpc/channel.h"
#include "llmesh/v1/tokenizer.grpc.pb.h"
#include "service_process.h"

namespace llmesh::testing {
namespace {

using namespace llmesh::v1;

class TokenizerServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // stories260K plus the reference vocabularies, in one model directory.
    std::string dir = MakeTempDir("models");
    std::string shared = LLMESH_SHARED_DIR;
    std::filesystem::create_symlink(shared + "/models/stories260K.gguf", dir + "/stories260K.gguf");
    for (const char* v : {"ggml-vocab-gpt-2", "ggml-vocab-bert-bge", "ggml-vocab-llama-spm"})
      std::filesystem::create_symlink(shared + "/tokenizer-vectors/" + v + ".gguf", dir + "/" + v + ".gguf");
    auto svc = StartService(std::string(LLMESH_BIN_DIR) + "/llmesh-tokenizer", {"--model-dir", dir});
    ASSERT_TRUE(svc.ok()) << svc.status();
    service_ = new Service(std::move(*svc));
    ASSERT_TRUE(WaitForServing(service_->address(), absl::Seconds(20)).ok());
    stub_ = TokenizerService::NewStub(rpc::CreateChannel(service_->address())).release();
  }
  static void TearDownTestSuite() {
    delete stub_;
    delete service_;
  }

  static grpc::Status Tokenize(const std::string& model, const std::string& text, bool add_special,
                               TokenizeResponse* resp, bool parse_special = false) {
    TokenizeRequest req;
    req.set_model(model);
    req.set_text(text);
    req.set_add_special(add_special);
    req.set_parse_special(parse_special);
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    return stub_->Tokenize(ctx.get(), req, resp);
  }

  static inline Service* service_ = nullptr;
  static inline TokenizerService::Stub* stub_ = nullptr;
};

TEST_F(TokenizerServiceTest, TokenizesTheGoldenPrompt) {
  TokenizeResponse resp;
  ASSERT_TRUE(Tokenize("stories260K", "Once upon a time", true, &resp).ok());
  EXPECT_EQ(std::vector<int32_t>(resp.token_ids().begin(), resp.token_ids().end()),
            (std::vector<int32_t>{1, 403, 407, 261, 378}));
}

TEST_F(TokenizerServiceTest, DetokenizeInvertsTokenize) {
  TokenizeResponse tok;
  ASSERT_TRUE(Tokenize("ggml-vocab-gpt-2", "Hello, world! 你好", false, &tok).ok());
  DetokenizeRequest req;
  req.set_model("ggml-vocab-gpt-2");
  *req.mutable_token_ids() = tok.token_ids();
  DetokenizeResponse resp;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->Detokenize(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.text(), "Hello, world! 你好");
}

TEST_F(TokenizerServiceTest, StreamedDeltasAreValidUtf8AndConcatenateToTheText) {
  const std::string text = "Grüße, 世界! 🦙 llamas";
  TokenizeResponse tok;
  ASSERT_TRUE(Tokenize("ggml-vocab-llama-spm", text, true, &tok).ok());
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  auto stream = stub_->DetokenizeStream(ctx.get());
  std::string joined;
  for (int i = 0; i < tok.token_ids_size(); ++i) {
    DetokenizeStreamRequest req;
    if (i == 0) req.set_model("ggml-vocab-llama-spm");
    req.set_skip_special(true);
    req.add_token_ids(tok.token_ids(i));
    ASSERT_TRUE(stream->Write(req));
    DetokenizeStreamResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    // Each delta is whole characters: it must itself be valid UTF-8.
    TokenizeResponse check;
    ASSERT_TRUE(Tokenize("ggml-vocab-llama-spm", resp.text_delta(), false, &check).ok()) << i;
    joined += resp.text_delta();
  }
  stream->WritesDone();
  DetokenizeStreamResponse rest;
  while (stream->Read(&rest)) joined += rest.text_delta();
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(joined, text);
}

TEST_F(TokenizerServiceTest, AppliesNamedChatTemplateAndRefusesUnknownOnes) {
  ApplyChatTemplateRequest req;
  req.set_model("stories260K");
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("Hi");
  req.set_add_generation_prompt(true);
  ApplyChatTemplateResponse resp;
  {
    // stories260K has no template: an error unless a template or fallback is given.
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    auto st = stub_->ApplyChatTemplate(ctx.get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("no chat template"), std::string::npos);
  }
  {
    req.set_template_name("chatml");
    req.set_tokenize(true);
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    ASSERT_TRUE(stub_->ApplyChatTemplate(ctx.get(), req, &resp).ok());
    EXPECT_EQ(resp.prompt(), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(resp.template_name(), "chatml");
    EXPECT_GT(resp.token_ids_size(), 0);
  }
  {
    req.set_template_name("no-such-family");
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    EXPECT_EQ(stub_->ApplyChatTemplate(ctx.get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_F(TokenizerServiceTest, ReportsVocabInfo) {
  GetVocabInfoRequest req;
  req.set_model("stories260K");
  VocabInfo info;
  auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
  ASSERT_TRUE(stub_->GetVocabInfo(ctx.get(), req, &info).ok());
  EXPECT_EQ(info.n_vocab(), 512);
  EXPECT_EQ(info.kind(), TOKENIZER_KIND_SENTENCEPIECE);
  EXPECT_EQ(info.bos_id(), 1);
  EXPECT_EQ(info.eos_id(), 2);
  EXPECT_TRUE(info.add_bos());
}

TEST_F(TokenizerServiceTest, BadInputGetsAClearErrorAndTheNextRequestWorks) {
  TokenizeResponse resp;
  auto unknown = Tokenize("no-such-model", "x", false, &resp);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  auto path = Tokenize("../models/stories260K", "x", false, &resp);
  EXPECT_EQ(path.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // proto3 `string` fields must be UTF-8: gRPC's parser rejects such a message
  // before the service sees it (most languages' clients refuse to send it at
  // all). The library's own INVALID_ARGUMENT is covered by the tokenizer tests.
  auto bad_utf8 = Tokenize("stories260K", std::string("ab\xff\xfe"), false, &resp);
  EXPECT_FALSE(bad_utf8.ok());

  for (int bad_id : {-1, 512, 1 << 30}) {
    DetokenizeRequest req;
    req.set_model("stories260K");
    req.add_token_ids(5);
    req.add_token_ids(bad_id);
    DetokenizeResponse d;
    auto ctx = rpc::ContextWithTimeout(absl::Seconds(10));
    auto st = stub_->Detokenize(ctx.get(), req, &d);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad_id;
    EXPECT_NE(st.error_message().find("token_ids[1]"), std::string::npos) << st.error_message();
  }
  ASSERT_TRUE(Tokenize("stories260K", "Once upon a time", true, &resp).ok());
  EXPECT_EQ(resp.token_ids_size(), 5);
}

}  // namespace
}  // namespace llmesh::testing
