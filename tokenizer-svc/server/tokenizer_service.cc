#include "tokenizer_service.h"

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/status.h"
#include "llmesh/tokenizer/chat_template.h"
#include "llmesh/tokenizer/detokenizer.h"

namespace llmesh::tokenizer {
namespace {

// Tokenizer work is short and CPU-bound: it runs inline on the gRPC callback
// thread and finishes the reactor at once.
grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const absl::Status& st) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(rpc::ToGrpcStatus(st));
  return reactor;
}

absl::Status ValidateIds(const google::protobuf::RepeatedField<int32_t>& ids, const Tokenizer& tok) {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= tok.n_vocab())
      return absl::InvalidArgumentError(
          absl::StrCat("token_ids[", i, "] = ", ids[i], " is outside the vocabulary [0, ", tok.n_vocab(), ")"));
  }
  return absl::OkStatus();
}

v1::TokenizerKind KindOf(VocabType t) {
  switch (t) {
    case VocabType::kSpm: return v1::TOKENIZER_KIND_SENTENCEPIECE;
    case VocabType::kBpe: return v1::TOKENIZER_KIND_BYTE_BPE;
    case VocabType::kWpm: return v1::TOKENIZER_KIND_WORDPIECE;
  }
  return v1::TOKENIZER_KIND_UNSPECIFIED;
}

}  // namespace

grpc::ServerUnaryReactor* TokenizerServiceImpl::Tokenize(grpc::CallbackServerContext* ctx,
                                                         const v1::TokenizeRequest* req,
                                                         v1::TokenizeResponse* resp) {
  auto tok = registry_.Get(req->model());
  if (!tok.ok()) return Done(ctx, tok.status());
  auto ids = (*tok)->Encode(req->text(), req->add_special(), req->parse_special());
  if (!ids.ok()) return Done(ctx, ids.status());
  resp->mutable_token_ids()->Assign(ids->begin(), ids->end());
  if (req->return_pieces()) {
    for (int32_t id : *ids) resp->add_pieces((*tok)->TokenToPiece(id, true));
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* TokenizerServiceImpl::Detokenize(grpc::CallbackServerContext* ctx,
                                                           const v1::DetokenizeRequest* req,
                                                           v1::DetokenizeResponse* resp) {
  auto tok = registry_.Get(req->model());
  if (!tok.ok()) return Done(ctx, tok.status());
  if (auto st = ValidateIds(req->token_ids(), **tok); !st.ok()) return Done(ctx, st);
  auto text = (*tok)->Decode(std::span<const int32_t>(req->token_ids().data(), req->token_ids().size()),
                             req->skip_special());
  if (!text.ok()) return Done(ctx, text.status());
  resp->set_text(std::move(*text));
  return Done(ctx, absl::OkStatus());
}

namespace {

// One bidirectional stream: read a request, push its ids, write the delta,
// read the next. At the client's half-close, write what was held back.
class DetokenizeStreamReactor
    : public grpc::ServerBidiReactor<v1::DetokenizeStreamRequest, v1::DetokenizeStreamResponse> {
 public:
  explicit DetokenizeStreamReactor(TokenizerRegistry& registry) : registry_(registry) { StartRead(&req_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // client finished sending
      if (!detok_) return Finish(grpc::Status::OK);
      resp_.set_text_delta(detok_->Flush());
      finishing_ = true;
      if (resp_.text_delta().empty()) return Finish(grpc::Status::OK);
      return StartWrite(&resp_);
    }
    if (!detok_) {
      auto tok = registry_.Get(req_.model());
      if (!tok.ok()) return Finish(rpc::ToGrpcStatus(tok.status()));
      tok_ = *tok;
      DecodeOptions opts;
      opts.skip_special = req_.skip_special();
      detok_.emplace(*tok_, opts);
    }
    std::string delta;
    for (int i = 0; i < req_.token_ids_size(); ++i) {
      auto piece = detok_->Push(req_.token_ids(i));
      if (!piece.ok()) return Finish(rpc::ToGrpcStatus(piece.status()));
      delta += *piece;
    }
    resp_.set_text_delta(std::move(delta));
    StartWrite(&resp_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    if (finishing_) return Finish(grpc::Status::OK);
    StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  TokenizerRegistry& registry_;
  std::shared_ptr<const Tokenizer> tok_;
  std::optional<StreamingDetokenizer> detok_;
  v1::DetokenizeStreamRequest req_;
  v1::DetokenizeStreamResponse resp_;
  bool finishing_ = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::DetokenizeStreamRequest, v1::DetokenizeStreamResponse>*
TokenizerServiceImpl::DetokenizeStream(grpc::CallbackServerContext*) {
  return new DetokenizeStreamReactor(registry_);
}

grpc::ServerUnaryReactor* TokenizerServiceImpl::ApplyChatTemplate(grpc::CallbackServerContext* ctx,
                                                                  const v1::ApplyChatTemplateRequest* req,
                                                                  v1::ApplyChatTemplateResponse* resp) {
  auto tok = registry_.Get(req->model());
  if (!tok.ok()) return Done(ctx, tok.status());
  if (req->messages().empty()) return Done(ctx, absl::InvalidArgumentError("messages is empty"));
  std::string source = req->template_name().empty() ? (*tok)->chat_template() : req->template_name();
  if (source.empty() && !req->allow_fallback())
    return Done(ctx, absl::InvalidArgumentError(absl::StrCat(
                         "model '", req->model(), "' has no chat template; name one in template_name or set allow_fallback")));
  auto kind = ResolveChatTemplate(source, req->allow_fallback());
  if (!kind.ok()) return Done(ctx, kind.status());
  std::vector<ChatMessage> messages;
  for (const auto& m : req->messages()) messages.push_back({m.role(), m.content()});
  ChatOptions opts;
  opts.add_generation_prompt = req->add_generation_prompt();
  if ((*tok)->bos_id() >= 0) opts.bos_token = std::string((*tok)->TokenText((*tok)->bos_id()));
  if ((*tok)->eos_id() >= 0) opts.eos_token = std::string((*tok)->TokenText((*tok)->eos_id()));
  auto prompt = RenderChat(*kind, messages, opts);
  if (!prompt.ok()) return Done(ctx, prompt.status());
  if (req->tokenize()) {
    auto ids = (*tok)->Encode(*prompt, /*add_special=*/false, /*parse_special=*/true);
    if (!ids.ok()) return Done(ctx, ids.status());
    resp->mutable_token_ids()->Assign(ids->begin(), ids->end());
  }
  resp->set_prompt(std::move(*prompt));
  resp->set_template_name(std::string(ChatTemplateName(*kind)));
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* TokenizerServiceImpl::GetVocabInfo(grpc::CallbackServerContext* ctx,
                                                             const v1::GetVocabInfoRequest* req,
                                                             v1::VocabInfo* resp) {
  auto tok_or = registry_.Get(req->model());
  if (!tok_or.ok()) return Done(ctx, tok_or.status());
  const Tokenizer& tok = **tok_or;
  resp->set_model(req->model());
  resp->set_kind(KindOf(tok.type()));
  resp->set_pre_type(tok.vocab().pre());
  resp->set_n_vocab(tok.n_vocab());
  resp->set_bos_id(tok.bos_id());
  resp->set_eos_id(tok.eos_id());
  resp->set_unk_id(tok.unk_id());
  resp->set_pad_id(tok.pad_id());
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (tok.is_eog(id)) resp->add_eog_ids(id);
  }
  resp->set_add_bos(tok.add_bos());
  resp->set_add_eos(tok.add_eos());
  resp->set_chat_template(tok.chat_template());
  if (!tok.chat_template().empty()) {
    if (auto kind = DetectChatTemplate(tok.chat_template()); kind.ok())
      resp->set_chat_template_family(std::string(ChatTemplateName(*kind)));
  }
  return Done(ctx, absl::OkStatus());
}

}  // namespace llmesh::tokenizer
