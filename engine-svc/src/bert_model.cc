// BERT loader: `bert.*` hyperparameters, then every tensor bound and checked
// against them, so the forward pass can trust every shape it reads.
#include "llmesh/engine/bert_model.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "llmesh/engine/hparams.h"
#include "llmesh/engine/model.h"
#include "spdlog/spdlog.h"
#include "tensor_bind.h"

namespace llmesh::engine {
namespace {

using internal::ExpectF32Vector;
using internal::ExpectMatrix;

constexpr char kArch[] = "bert";

absl::StatusOr<int64_t> RequiredInt(const gguf::GgufFile& f, const std::string& key, int64_t lo,
                                    int64_t hi) {
  auto v = f.GetU64(key);
  if (absl::IsNotFound(v.status())) {
    return absl::InvalidArgumentError(absl::StrCat("missing required metadata key '", key, "'"));
  }
  if (!v.ok()) return v.status();
  if (*v < static_cast<uint64_t>(lo) || *v > static_cast<uint64_t>(hi)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("metadata key '%s' = %d out of range [%d, %d]", key, *v, lo, hi));
  }
  return static_cast<int64_t>(*v);
}

// llama.cpp's enum llama_pooling_type, as convert_hf_to_gguf writes it.
absl::StatusOr<Pooling> PoolingFromGguf(uint64_t v) {
  switch (v) {
    case 0:  // NONE: per-token output in llama.cpp; a sentence vector needs one
    case 1:
      return Pooling::kMean;
    case 2:
      return Pooling::kCls;
    case 3:
      return Pooling::kLast;
    default:
      // 4 is RANK (a reranker's classifier head), which this engine lacks.
      return absl::InvalidArgumentError(absl::StrFormat(
          "'bert.pooling_type' = %d is not supported (0 none, 1 mean, 2 cls, 3 last)", v));
  }
}

}  // namespace

bool IsBertFile(const gguf::GgufFile& file) {
  auto arch = file.GetString("general.architecture");
  return arch.ok() && *arch == kArch;
}

absl::StatusOr<BertParams> ReadBertParams(const gguf::GgufFile& f) {
  if (!IsBertFile(f)) {
    return absl::InvalidArgumentError("general.architecture is not 'bert'");
  }
  BertParams hp;
  if (auto n = f.GetString("general.name"); n.ok()) hp.name = std::string(*n);
  auto key = [](const char* suffix) { return absl::StrCat(kArch, ".", suffix); };
  // block_count first, so a huge count fails before anything else is read.
  struct IntKey {
    const char* suffix;
    int64_t* dst;
    int64_t lo, hi;
  };
  for (const IntKey& k : {IntKey{"block_count", &hp.n_layer, 1, kMaxLayers},
                          IntKey{"context_length", &hp.n_ctx_train, 1, kMaxCtx},
                          IntKey{"embedding_length", &hp.n_embd, 1, kMaxEmbd},
                          IntKey{"feed_forward_length", &hp.n_ff, 1, kMaxFf},
                          IntKey{"attention.head_count", &hp.n_head, 1, kMaxHeads}}) {
    auto v = RequiredInt(f, key(k.suffix), k.lo, k.hi);
    if (!v.ok()) return v.status();
    *k.dst = *v;
  }
  if (hp.n_embd % hp.n_head != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' = %d is not a multiple of '%s' = %d", key("embedding_length"),
                        hp.n_embd, key("attention.head_count"), hp.n_head));
  }
  // BERT has no grouped-query attention; a file claiming it is not one we know.
  if (auto kv = f.GetU64(key("attention.head_count_kv"));
      kv.ok() && static_cast<int64_t>(*kv) != hp.n_head) {
    return absl::InvalidArgumentError(absl::StrFormat("'%s' = %d differs from '%s' = %d",
                                                      key("attention.head_count_kv"), *kv,
                                                      key("attention.head_count"), hp.n_head));
  }
  {
    auto eps = f.GetF32(key("attention.layer_norm_epsilon"));
    if (absl::IsNotFound(eps.status())) {
      return absl::InvalidArgumentError(absl::StrCat("missing required metadata key '",
                                                     key("attention.layer_norm_epsilon"), "'"));
    }
    if (!eps.ok()) return eps.status();
    if (!std::isfinite(*eps) || *eps <= 0.0f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "metadata key '%s' = %g must be positive and finite", key("attention.layer_norm_epsilon"),
          *eps));
    }
    hp.norm_eps = *eps;
  }
  if (auto causal = f.GetBool(key("attention.causal")); causal.ok() && *causal) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", key("attention.causal"), "' = true: a bert encoder attends both ways"));
  }
  if (auto p = f.GetU64(key("pooling_type")); p.ok()) {
    auto pooling = PoolingFromGguf(*p);
    if (!pooling.ok()) return pooling.status();
    hp.pooling = *pooling;
  } else if (!absl::IsNotFound(p.status())) {
    return p.status();
  }
  return hp;
}

absl::StatusOr<std::unique_ptr<BertModel>> BertModel::Load(const std::string& path) {
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  return FromGguf(std::move(*file));
}

absl::StatusOr<std::unique_ptr<BertModel>> BertModel::FromGguf(
    std::unique_ptr<gguf::GgufFile> file) {
  std::unique_ptr<BertModel> m(new BertModel());
  m->file_ = std::move(file);
  auto hp = ReadBertParams(*m->file_);
  if (!hp.ok()) return hp.status();
  m->hp_ = std::move(*hp);
  if (auto s = m->Bind(); !s.ok()) return s;
  spdlog::debug("loaded bert model '{}': {} layers, n_embd {}, n_vocab {}, pooling {}",
                m->hp_.name, m->hp_.n_layer, m->hp_.n_embd, m->hp_.n_vocab,
                PoolingName(m->hp_.pooling));
  return m;
}

absl::Status BertModel::Bind() {
  const gguf::GgufFile& f = *file_;
  BertParams& hp = hp_;
  const int64_t n_embd = hp.n_embd;

  // n_vocab comes from the embedding table; the vocabulary must agree.
  const gguf::TensorInfo* te = f.FindTensor("token_embd.weight");
  if (te == nullptr) return absl::InvalidArgumentError("missing tensor 'token_embd.weight'");
  hp.n_vocab = te->ne[1];
  if (hp.n_vocab < 1) return absl::InvalidArgumentError("tensor 'token_embd.weight' has no rows");
  if (auto toks = f.GetStringArray("tokenizer.ggml.tokens");
      toks.ok() && static_cast<int64_t>(toks->size()) != hp.n_vocab) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "vocabulary 'tokenizer.ggml.tokens' has %d tokens but tensor 'token_embd.weight' has %d "
        "rows",
        toks->size(), hp.n_vocab));
  }
  auto tok = ExpectMatrix(f, "token_embd.weight", n_embd, hp.n_vocab);
  if (!tok.ok()) return tok.status();
  tok_embd_ = *tok;
  auto pos = ExpectMatrix(f, "position_embd.weight", n_embd, hp.n_ctx_train);
  if (!pos.ok()) return pos.status();
  pos_embd_ = *pos;

  type_row0_.assign(n_embd, 0.0f);
  if (const gguf::TensorInfo* tt = f.FindTensor("token_types.weight")) {
    // (n_token_types, n_embd); BERT has 2 types, llama.cpp uses type 0 only.
    const int64_t n_types = tt->ne[1];
    if (n_types < 1 || n_types > 16) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tensor 'token_types.weight' has %d rows (1..16 expected)", n_types));
    }
    auto types = ExpectMatrix(f, "token_types.weight", n_embd, n_types);
    if (!types.ok()) return types.status();
    DequantizeWeightRow(*types, 0, type_row0_.data());
    hp.n_token_types = n_types;
  }

  struct Vec {
    std::string name;
    int64_t n;
    const float** dst;
    bool required;
  };
  for (const Vec& v : {Vec{"token_embd_norm.weight", n_embd, &embd_norm_, true},
                       Vec{"token_embd_norm.bias", n_embd, &embd_norm_b_, true}}) {
    auto p = ExpectF32Vector(f, v.name, v.n, v.required);
    if (!p.ok()) return p.status();
    *v.dst = *p;
  }

  layers_.resize(hp.n_layer);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    BertLayerWeights& L = layers_[il];
    auto nm = [il](const char* what) { return absl::StrCat("blk.", il, ".", what); };
    for (const Vec& v : {Vec{nm("attn_q.bias"), n_embd, &L.bq, false},
                         Vec{nm("attn_k.bias"), n_embd, &L.bk, false},
                         Vec{nm("attn_v.bias"), n_embd, &L.bv, false},
                         Vec{nm("attn_output.bias"), n_embd, &L.bo, false},
                         Vec{nm("attn_output_norm.weight"), n_embd, &L.attn_out_norm, true},
                         Vec{nm("attn_output_norm.bias"), n_embd, &L.attn_out_norm_b, true},
                         Vec{nm("ffn_up.bias"), hp.n_ff, &L.b_up, false},
                         Vec{nm("ffn_down.bias"), n_embd, &L.b_down, false},
                         Vec{nm("layer_output_norm.weight"), n_embd, &L.out_norm, true},
                         Vec{nm("layer_output_norm.bias"), n_embd, &L.out_norm_b, true}}) {
      auto p = ExpectF32Vector(f, v.name, v.n, v.required);
      if (!p.ok()) return p.status();
      *v.dst = *p;
    }
    struct Mat {
      const char* name;
      int64_t n_in, n_out;
      WeightView* dst;
    };
    for (const Mat& mt : {Mat{"attn_q.weight", n_embd, n_embd, &L.wq},
                          Mat{"attn_k.weight", n_embd, n_embd, &L.wk},
                          Mat{"attn_v.weight", n_embd, n_embd, &L.wv},
                          Mat{"attn_output.weight", n_embd, n_embd, &L.wo},
                          Mat{"ffn_up.weight", n_embd, hp.n_ff, &L.w_up},
                          Mat{"ffn_down.weight", hp.n_ff, n_embd, &L.w_down}}) {
      auto w = ExpectMatrix(f, nm(mt.name), mt.n_in, mt.n_out);
      if (!w.ok()) return w.status();
      *mt.dst = *w;
    }
  }
  // A layer tensor beyond block_count means the metadata lies about the file.
  const std::string beyond = absl::StrCat("blk.", hp.n_layer, ".");
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.name.substr(0, beyond.size()) == beyond) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s' is beyond 'bert.block_count' = %d", std::string(t.name), hp.n_layer));
    }
  }
  return absl::OkStatus();
}

size_t BertModel::TensorBytes() const {
  size_t bytes = 0;
  for (const gguf::TensorInfo& t : file_->tensors()) bytes += t.nbytes;
  return bytes;
}

int64_t BertModel::ParameterCount() const {
  int64_t n = 0;
  for (const gguf::TensorInfo& t : file_->tensors()) n += t.n_elements();
  return n;
}

}  // namespace llmesh::engine
