// Model loader: binds GGUF tensors to the decoder layer (family.h) and
// rejects any file whose tensors disagree with its hyperparameters.
#include "llmesh/engine/model.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "llmesh/engine/quants.h"
#include "spdlog/spdlog.h"
#include "tensor_bind.h"

namespace llmesh::engine {

using internal::ExpectF32Vector;
using internal::ExpectMatrix;

namespace {

WeightView RowRange(const WeightView& w, int64_t first, int64_t n) {
  return WeightView{w.type, w.n_in, n, static_cast<const uint8_t*>(w.data) + first * w.row_bytes, w.row_bytes};
}

}  // namespace

void DequantizeWeightRow(const WeightView& w, int64_t row, float* out) {
  const auto* src = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(row) * w.row_bytes;
  // The type was checked by the loader, so this cannot fail.
  DequantizeRow(w.type, src, out, w.n_in).IgnoreError();
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path) {
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  return FromGguf(std::move(*file));
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromGguf(std::unique_ptr<gguf::GgufFile> file) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  auto hp = ReadModelParams(*m->file_);
  if (!hp.ok()) return hp.status();
  m->hp_ = std::move(*hp);
  if (auto s = m->Bind(); !s.ok()) return s;
  spdlog::debug("loaded {} model '{}': {} layers, n_embd {}, n_vocab {}", ArchName(m->hp_.arch),
                m->hp_.name, m->hp_.n_layer, m->hp_.n_embd, m->hp_.n_vocab);
  return m;
}

absl::Status Model::Bind() {
  const gguf::GgufFile& f = *file_;
  ModelParams& hp = hp_;

  // n_vocab comes from the embedding table; the vocabulary must agree.
  const gguf::TensorInfo* te = f.FindTensor("token_embd.weight");
  if (te == nullptr) return absl::InvalidArgumentError("missing tensor 'token_embd.weight'");
  hp.n_vocab = te->ne[1];
  if (hp.n_vocab < 1) return absl::InvalidArgumentError("tensor 'token_embd.weight' has no rows");
  const std::string arch(ArchName(hp.arch));
  if (auto v = f.GetU64(arch + ".vocab_size"); v.ok() && static_cast<int64_t>(*v) != hp.n_vocab) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s.vocab_size' = %d disagrees with tensor 'token_embd.weight' rows %d",
                        arch, *v, hp.n_vocab));
  }
  if (const gguf::Value* toks = f.Find("tokenizer.ggml.tokens")) {
    if (const gguf::Array* arr = toks->as_array();
        arr != nullptr && static_cast<int64_t>(arr->size()) != hp.n_vocab) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "vocabulary 'tokenizer.ggml.tokens' has %d tokens but tensor 'token_embd.weight' has "
          "%d rows",
          arr->size(), hp.n_vocab));
    }
  }

  auto te_view = ExpectMatrix(f, "token_embd.weight", hp.n_embd, hp.n_vocab);
  if (!te_view.ok()) return te_view.status();
  tok_embd_ = *te_view;

  auto on = ExpectF32Vector(f, "output_norm.weight", hp.n_embd);
  if (!on.ok()) return on.status();
  output_norm_ = *on;

  if (f.FindTensor("output.weight") != nullptr) {
    auto out = ExpectMatrix(f, "output.weight", hp.n_embd, hp.n_vocab);
    if (!out.ok()) return out.status();
    output_ = *out;
    tied_output_ = false;
  } else {
    output_ = tok_embd_;  // tied embeddings (SmolLM, Llama 3.2, Qwen2 0.5B)
    tied_output_ = true;
  }

  auto rf = ExpectF32Vector(f, "rope_freqs.weight", hp.n_rot / 2, /*required=*/false);
  if (!rf.ok()) return rf.status();
  if (*rf != nullptr) {
    rope_freq_factors_.assign(*rf, *rf + hp.n_rot / 2);  // the file's own llama3 divisors
  } else {
    rope_freq_factors_ = hp.rope_freq_factors;
  }
  for (const auto& [name, dst] : {std::pair{"rope_factors_short.weight", &rope_factors_short_},
                                   std::pair{"rope_factors_long.weight", &rope_factors_long_}}) {
    auto v = ExpectF32Vector(f, name, hp.n_rot / 2, /*required=*/false);
    if (!v.ok()) return v.status();
    *dst = *v;
  }
  // Every divisor table the rotation may use (llama3's, LongRoPE's two).
  for (const auto& [what, factors] : {std::pair{"rope frequency factors", rope_freq_factors()},
                                      std::pair{"tensor 'rope_factors_short.weight'", rope_factors_short_},
                                      std::pair{"tensor 'rope_factors_long.weight'", rope_factors_long_}}) {
    for (int64_t i = 0; factors != nullptr && i < hp.n_rot / 2; ++i) {
      if (!std::isfinite(factors[i]) || factors[i] <= 0.0f) {
        return absl::InvalidArgumentError(absl::StrCat(what, " must be positive and finite"));
      }
    }
  }

  const Family& fam = family();
  const int64_t n_q = hp.n_embd_q();
  const int64_t n_k = hp.n_embd_k_gqa();
  const int64_t n_v = hp.n_embd_v_gqa();
  const int64_t n_o_in = hp.n_head * hp.n_embd_head_v;
  const int64_t q_norm_n = QkNormWidth(fam, hp.n_embd_head_k, n_q);
  const int64_t k_norm_n = QkNormWidth(fam, hp.n_embd_head_k, n_k);
  layers_.resize(hp.n_layer);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& L = layers_[il];
    auto nm = [il](const char* what) { return absl::StrCat("blk.", il, ".", what); };
    // A family without a step leaves its tensors unread even when present.
    struct Vec {
      const char* name;
      int64_t n;
      const float** dst;
      bool used, required;
    };
    const bool qk = fam.qk_norm != QkNorm::kNone;
    const bool pre = fam.pre_norms, post = fam.post_norms, sub = fam.sub_norms;
    for (const Vec& v : {Vec{"attn_norm.weight", hp.n_embd, &L.attn_norm, pre, pre},
                         Vec{"ffn_norm.weight", hp.n_embd, &L.ffn_norm, pre, pre},
                         Vec{"attn_q.bias", n_q, &L.bq, true, hp.has_qkv_bias},
                         Vec{"attn_k.bias", n_k, &L.bk, true, hp.has_qkv_bias},
                         Vec{"attn_v.bias", n_v, &L.bv, true, hp.has_qkv_bias},
                         Vec{"attn_output.bias", hp.n_embd, &L.bo, true, false},
                         Vec{"attn_q_norm.weight", q_norm_n, &L.q_norm, qk, qk},
                         Vec{"attn_k_norm.weight", k_norm_n, &L.k_norm, qk, qk},
                         Vec{"post_attention_norm.weight", hp.n_embd, &L.post_attn_norm, post, post},
                         Vec{"post_ffw_norm.weight", hp.n_embd, &L.post_ffn_norm, post, post},
                         Vec{"attn_sub_norm.weight", n_o_in, &L.attn_sub_norm, sub, sub},
                         Vec{"ffn_sub_norm.weight", hp.n_ff, &L.ffn_sub_norm, sub, sub}}) {
      if (!v.used) continue;
      auto p = ExpectF32Vector(f, nm(v.name), v.n, v.required);
      if (!p.ok()) return p.status();
      *v.dst = *p;
    }
    struct Mat {
      const char* name;
      int64_t n_in, n_out;
      WeightView* dst;
    };
    std::vector<Mat> mats = {Mat{"attn_output.weight", n_o_in, hp.n_embd, &L.wo},
                             Mat{"ffn_down.weight", hp.n_ff, hp.n_embd, &L.w_down}};
    // Fused projections become row ranges of the one matrix.
    WeightView qkv{}, gate_up{};
    const bool fused_qkv = f.FindTensor(nm("attn_qkv.weight")) != nullptr;
    if (fused_qkv) {
      mats.push_back({"attn_qkv.weight", hp.n_embd, n_q + n_k + n_v, &qkv});
    } else {
      mats.push_back({"attn_q.weight", hp.n_embd, n_q, &L.wq});
      mats.push_back({"attn_k.weight", hp.n_embd, n_k, &L.wk});
      mats.push_back({"attn_v.weight", hp.n_embd, n_v, &L.wv});
    }
    const gguf::TensorInfo* up = f.FindTensor(nm("ffn_up.weight"));
    const bool fused_up =
        f.FindTensor(nm("ffn_gate.weight")) == nullptr && up != nullptr && up->ne[1] == 2 * hp.n_ff;
    if (fused_up) {
      mats.push_back({"ffn_up.weight", hp.n_embd, 2 * hp.n_ff, &gate_up});
    } else {
      mats.push_back({"ffn_gate.weight", hp.n_embd, hp.n_ff, &L.w_gate});
      mats.push_back({"ffn_up.weight", hp.n_embd, hp.n_ff, &L.w_up});
    }
    for (const Mat& mt : mats) {
      auto w = ExpectMatrix(f, nm(mt.name), mt.n_in, mt.n_out);
      if (!w.ok()) return w.status();
      *mt.dst = *w;
    }
    if (fused_qkv) {
      L.wq = RowRange(qkv, 0, n_q);
      L.wk = RowRange(qkv, n_q, n_k);
      L.wv = RowRange(qkv, n_q + n_k, n_v);
    }
    if (fused_up) {
      L.w_gate = RowRange(gate_up, 0, hp.n_ff);
      L.w_up = RowRange(gate_up, hp.n_ff, hp.n_ff);
    }
    for (const auto& [name, dst] : {std::pair{"attn_q.scale", &L.scale.q}, std::pair{"attn_k.scale", &L.scale.k},
                                     std::pair{"attn_v.scale", &L.scale.v}, std::pair{"attn_output.scale", &L.scale.o},
                                     std::pair{"ffn_gate.scale", &L.scale.gate}, std::pair{"ffn_up.scale", &L.scale.up},
                                     std::pair{"ffn_down.scale", &L.scale.down}}) {
      auto s = ExpectF32Vector(f, nm(name), 1, /*required=*/false);
      if (!s.ok()) return s.status();
      if (*s == nullptr) continue;
      if (!std::isfinite(**s)) return absl::InvalidArgumentError(absl::StrCat("tensor '", nm(name), "' is not finite"));
      *dst = **s;
    }
  }
  // A layer tensor beyond block_count means the metadata lies about the file.
  const std::string beyond = absl::StrCat("blk.", hp.n_layer, ".");
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.name.substr(0, beyond.size()) == beyond) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tensor '%s' is beyond '%s.block_count' = %d", t.name, arch, hp.n_layer));
    }
  }
  // Interleaved copies for the batched kernels, once the file is known good.
  packed_.Pack(&output_, &f);
  for (LayerWeights& L : layers_) {
    for (WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) packed_.Pack(w, &f);
  }
  return absl::OkStatus();
}

RopeParams Model::LayerRope(int64_t il, int32_t n_ctx) const {
  const ModelParams& hp = hp_;
  const bool swa = hp.is_swa(il);
  RopeParams r;
  r.freq_base = swa ? hp.rope_freq_base_swa : hp.rope_freq_base;
  r.freq_scale = swa ? hp.rope_freq_scale_swa : hp.rope_freq_scale;
  r.beta_fast = hp.yarn_beta_fast;
  r.beta_slow = hp.yarn_beta_slow;
  r.n_ctx_orig = hp.n_ctx_orig_yarn;
  if (hp.rope_scaling == RopeScaling::kYarn && swa && r.freq_scale == 1.0f) {
    // Unscaled sliding layers of a YaRN model rotate plainly (OLMo 3).
    r.attn_factor = 1.0f;
  } else if (hp.rope_scaling == RopeScaling::kYarn) {
    r.ext_factor = 1.0f;
    r.attn_factor = YarnAttnFactor(r.freq_scale, hp.rope_yarn_log_mul) * hp.rope_attn_factor;
  } else {
    r.attn_factor = hp.rope_attn_factor;
  }
  if (rope_factors_short_ != nullptr || rope_factors_long_ != nullptr) {
    r.freq_factors = n_ctx > hp.n_ctx_orig_yarn && rope_factors_long_ ? rope_factors_long_ : rope_factors_short_;
  } else {
    r.freq_factors = rope_freq_factors();
  }
  return r;
}

size_t Model::BytesPerDecodedToken() const {
  auto mat = [](const WeightView& w) { return w.row_bytes * static_cast<size_t>(w.n_out); };
  size_t bytes = mat(output_);
  if (!tied_output_) bytes += tok_embd_.row_bytes;
  for (const LayerWeights& L : layers_) {
    bytes +=
        mat(L.wq) + mat(L.wk) + mat(L.wv) + mat(L.wo) + mat(L.w_gate) + mat(L.w_up) + mat(L.w_down);
    for (const float* norm : {L.attn_norm, L.ffn_norm, L.post_attn_norm, L.post_ffn_norm}) {
      if (norm != nullptr) bytes += hp_.n_embd * sizeof(float);
    }
    if (L.attn_sub_norm != nullptr) bytes += hp_.n_head * hp_.n_embd_head_v * sizeof(float);
    if (L.ffn_sub_norm != nullptr) bytes += hp_.n_ff * sizeof(float);
  }
  return bytes;
}

size_t Model::TensorBytes() const {
  size_t bytes = 0;
  for (const gguf::TensorInfo& t : file_->tensors()) bytes += t.nbytes;
  return bytes;
}

int64_t Model::ParameterCount() const {
  int64_t n = 0;
  for (const gguf::TensorInfo& t : file_->tensors()) n += t.n_elements();
  return n;
}

}  // namespace llmesh::engine
