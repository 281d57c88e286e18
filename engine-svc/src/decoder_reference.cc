// Reference decoder forward pass, read top to bottom like run.c. No threads,
// no batching, no cleverness: the fast path must agree with this.
#include "llmesh/engine/decoder_reference.h"

#include <algorithm>
#include <cmath>

namespace llmesh::engine {
namespace {

// All rows of `w` as floats, times its per-tensor scale (W.scale).
std::vector<float> Dequantize(const WeightView& w, float scale = 1.0f) {
  std::vector<float> out(static_cast<size_t>(w.n_out * w.n_in));
  for (int64_t r = 0; r < w.n_out; ++r) DequantizeWeightRow(w, r, out.data() + r * w.n_in);
  for (float& v : out) v *= scale;
  return out;
}

std::vector<float> Copy(const float* v, int64_t n) {
  return v ? std::vector<float>(v, v + n) : std::vector<float>();
}

void rmsnorm(float* o, const float* x, const float* weight, int64_t size, float eps) {
  float ss = 0.0f;
  for (int64_t j = 0; j < size; j++) ss += x[j] * x[j];
  ss /= static_cast<float>(size);
  ss += eps;
  ss = 1.0f / std::sqrt(ss);
  for (int64_t j = 0; j < size; j++) o[j] = weight[j] * (ss * x[j]);
}

void softmax(float* x, int64_t size) {
  float max_val = x[0];
  for (int64_t i = 1; i < size; i++) max_val = std::max(max_val, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < size; i++) {
    x[i] = std::exp(x[i] - max_val);
    sum += x[i];
  }
  for (int64_t i = 0; i < size; i++) x[i] /= sum;
}

// W (d,n) @ x (n,) -> xout (d,)
void matmul(float* xout, const float* x, const float* w, int64_t n, int64_t d) {
  for (int64_t i = 0; i < d; i++) {
    float val = 0.0f;
    for (int64_t j = 0; j < n; j++) val += w[i * n + j] * x[j];
    xout[i] = val;
  }
}

// Rotates dims (a, b) of each of n_heads heads: NORM pairs (2i, 2i+1), NEOX (i, i + n_rot/2).
void rope(float* vec, int64_t n_heads, int64_t hd, int64_t n_rot, RopeType type, const float* cs) {
  for (int64_t h = 0; h < n_heads; h++) {
    for (int64_t i = 0; i < n_rot / 2; i++) {
      const int64_t a = type == RopeType::kNorm ? 2 * i : i;
      const int64_t b = type == RopeType::kNorm ? 2 * i + 1 : i + n_rot / 2;
      float* v = vec + h * hd;
      const float v0 = v[a], v1 = v[b];
      v[a] = v0 * cs[2 * i] - v1 * cs[2 * i + 1];
      v[b] = v0 * cs[2 * i + 1] + v1 * cs[2 * i];
    }
  }
}

float gelu_tanh(float x) {
  return 0.5f * x * (1.0f + std::tanh(0.7978845608f * x * (1.0f + 0.044715f * x * x)));
}

}  // namespace

DecoderReference::DecoderReference(const Model& model, int32_t n_ctx)
    : p_(model.params()),
      fam_(model.family()),
      n_ctx_(n_ctx > 0 ? n_ctx : static_cast<int32_t>(model.params().n_ctx_train)) {
  const ModelParams& p = p_;
  const int64_t n_q = p.n_embd_q(), n_k = p.n_embd_k_gqa(), n_v = p.n_embd_v_gqa();
  const int64_t qn = QkNormWidth(fam_, p.n_embd_head_k, n_q);
  const int64_t kn = QkNormWidth(fam_, p.n_embd_head_k, n_k);
  token_embd_ = Dequantize(model.tok_embd());
  for (int64_t il = 0; il < p.n_layer; ++il) {
    const LayerWeights& L = model.layers()[il];
    Layer& l = layers_.emplace_back();
    l.attn_norm = Copy(L.attn_norm, p.n_embd);
    l.wq = Dequantize(L.wq, L.scale.q);
    l.wk = Dequantize(L.wk, L.scale.k);
    l.wv = Dequantize(L.wv, L.scale.v);
    l.bq = Copy(L.bq, n_q);
    l.bk = Copy(L.bk, n_k);
    l.bv = Copy(L.bv, n_v);
    l.q_norm = Copy(L.q_norm, qn);
    l.k_norm = Copy(L.k_norm, kn);
    l.wo = Dequantize(L.wo, L.scale.o);
    l.bo = Copy(L.bo, p.n_embd);
    l.attn_sub_norm = Copy(L.attn_sub_norm, p.n_head * p.n_embd_head_v);
    l.post_attn_norm = Copy(L.post_attn_norm, p.n_embd);
    l.ffn_norm = Copy(L.ffn_norm, p.n_embd);
    l.w1 = Dequantize(L.w_gate, L.scale.gate);
    l.w3 = Dequantize(L.w_up, L.scale.up);
    l.w2 = Dequantize(L.w_down, L.scale.down);
    l.ffn_sub_norm = Copy(L.ffn_sub_norm, p.n_ff);
    l.post_ffn_norm = Copy(L.post_ffn_norm, p.n_embd);
    l.rope = model.LayerRope(il, n_ctx_);
    l.rope_factors = Copy(l.rope.freq_factors, p.n_rot / 2);
    l.rope.freq_factors = l.rope_factors.empty() ? nullptr : l.rope_factors.data();
  }
  output_norm_ = Copy(model.output_norm(), p.n_embd);
  output_ = Dequantize(model.output());

  s_.x.resize(p.n_embd);
  s_.xb.resize(p.n_embd);
  s_.xb2.resize(p.n_embd);
  s_.q.resize(n_q);
  s_.att_out.resize(p.n_head * p.n_embd_head_v);
  s_.hb.resize(p.n_ff);
  s_.hb2.resize(p.n_ff);
  s_.att.resize(n_ctx_);
  s_.cs.resize(p.n_rot);
  s_.xn.resize(p.n_embd);
  s_.logits.resize(p.n_vocab);
  s_.key_cache.resize(static_cast<size_t>(p.n_layer) * n_ctx_ * n_k);
  s_.value_cache.resize(static_cast<size_t>(p.n_layer) * n_ctx_ * n_v);
}

const std::vector<float>& DecoderReference::Forward(int32_t token, int32_t pos) {
  const ModelParams& p = p_;
  RunState& s = s_;
  const int64_t dim = p.n_embd;
  const int64_t hd = p.n_embd_head_k;    // head size of q and k
  const int64_t hd_v = p.n_embd_head_v;  // head size of v
  const int64_t n_q = p.n_embd_q();
  const int64_t kv_dim = p.n_embd_k_gqa();
  const int64_t kv_dim_v = p.n_embd_v_gqa();
  const int64_t kv_mul = p.n_head / p.n_head_kv;  // query heads per kv head
  const int64_t hidden_dim = p.n_ff;
  const float eps = p.f_norm_rms_eps;
  float* x = s.x.data();

  // the token embedding, scaled where the family says so
  std::copy_n(token_embd_.data() + token * dim, dim, x);
  if (fam_.embd_scale_sqrt) {
    for (int64_t i = 0; i < dim; i++) x[i] *= std::sqrt(static_cast<float>(dim));
  }
  if (p.f_embedding_scale > 0) {
    for (int64_t i = 0; i < dim; i++) x[i] *= p.f_embedding_scale;
  }

  for (int64_t l = 0; l < p.n_layer; l++) {
    const Layer& w = layers_[l];
    // attention input: rmsnorm'd, or the stream itself (post-norm-only families)
    if (!w.attn_norm.empty()) {
      rmsnorm(s.xb.data(), x, w.attn_norm.data(), dim, eps);
    } else {
      std::copy_n(x, dim, s.xb.data());
    }

    // key and value point to this position's row of the kv cache
    const size_t loff = static_cast<size_t>(l) * n_ctx_;
    float* k = s.key_cache.data() + (loff + pos) * kv_dim;
    float* v = s.value_cache.data() + (loff + pos) * kv_dim_v;

    // qkv matmuls for this position (+ biases)
    matmul(s.q.data(), s.xb.data(), w.wq.data(), dim, n_q);
    matmul(k, s.xb.data(), w.wk.data(), dim, kv_dim);
    matmul(v, s.xb.data(), w.wv.data(), dim, kv_dim_v);
    for (int64_t i = 0; i < n_q && !w.bq.empty(); i++) s.q[i] += w.bq[i];
    for (int64_t i = 0; i < kv_dim && !w.bk.empty(); i++) k[i] += w.bk[i];
    for (int64_t i = 0; i < kv_dim_v && !w.bv.empty(); i++) v[i] += w.bv[i];

    // q/k norms: over each head, or over the whole projection
    if (fam_.qk_norm == QkNorm::kPerHead) {
      for (int64_t h = 0; h < p.n_head; h++) rmsnorm(s.q.data() + h * hd, s.q.data() + h * hd, w.q_norm.data(), hd, eps);
      for (int64_t h = 0; h < p.n_head_kv; h++) rmsnorm(k + h * hd, k + h * hd, w.k_norm.data(), hd, eps);
    } else if (fam_.qk_norm == QkNorm::kFullWidth) {
      rmsnorm(s.q.data(), s.q.data(), w.q_norm.data(), n_q, eps);
      rmsnorm(k, k, w.k_norm.data(), kv_dim, eps);
    }

    // RoPE, unless this is a NoPE layer
    if (p.uses_rope(l)) {
      RopeCosSin(w.rope, p.n_rot, pos, s.cs.data());
      rope(s.q.data(), p.n_head, hd, p.n_rot, p.rope_type, s.cs.data());
      rope(k, p.n_head_kv, hd, p.n_rot, p.rope_type, s.cs.data());
    }
    // llama4-style query temperature
    if (p.f_attn_temp_scale != 0.0f) {
      const float t = 1.0f + p.f_attn_temp_scale *
                                 std::log(std::floor(static_cast<float>(pos) / p.n_attn_temp_floor_scale) + 1.0f);
      for (int64_t i = 0; i < n_q; i++) s.q[i] *= t;
    }

    // multihead attention over positions [t0, pos]: all of them, or the window
    const int32_t t0 = p.is_swa(l) ? std::max<int32_t>(0, pos + 1 - static_cast<int32_t>(p.n_swa)) : 0;
    for (int64_t h = 0; h < p.n_head; h++) {
      const float* q = s.q.data() + h * hd;
      float* att = s.att.data();
      for (int32_t t = t0; t <= pos; t++) {
        const float* kt = s.key_cache.data() + (loff + t) * kv_dim + (h / kv_mul) * hd;
        float score = 0.0f;
        for (int64_t i = 0; i < hd; i++) score += q[i] * kt[i];
        score *= p.kq_scale();
        if (p.f_attn_softcap > 0) score = p.f_attn_softcap * std::tanh(score / p.f_attn_softcap);
        att[t - t0] = score;
      }
      softmax(att, pos + 1 - t0);
      // weighted sum of the values
      float* xb = s.att_out.data() + h * hd_v;
      std::fill_n(xb, hd_v, 0.0f);
      for (int32_t t = t0; t <= pos; t++) {
        const float* vt = s.value_cache.data() + (loff + t) * kv_dim_v + (h / kv_mul) * hd_v;
        for (int64_t i = 0; i < hd_v; i++) xb[i] += att[t - t0] * vt[i];
      }
    }

    // sub-norm (BitNet), output projection (+ bias), post-norm, residual multiplier, residual
    const int64_t n_att = p.n_head * hd_v;
    if (!w.attn_sub_norm.empty()) rmsnorm(s.att_out.data(), s.att_out.data(), w.attn_sub_norm.data(), n_att, eps);
    matmul(s.xb2.data(), s.att_out.data(), w.wo.data(), n_att, dim);
    for (int64_t i = 0; i < dim && !w.bo.empty(); i++) s.xb2[i] += w.bo[i];
    if (!w.post_attn_norm.empty()) rmsnorm(s.xb2.data(), s.xb2.data(), w.post_attn_norm.data(), dim, eps);
    for (int64_t i = 0; i < dim; i++) x[i] += s.xb2[i] * (p.f_residual_scale > 0 ? p.f_residual_scale : 1.0f);

    // ffn: w2(act(w1(x)) * w3(x)), act = silu or gelu(tanh), sub-norm'd before w2 (BitNet)
    if (!w.ffn_norm.empty()) {
      rmsnorm(s.xb.data(), x, w.ffn_norm.data(), dim, eps);
    } else {
      std::copy_n(x, dim, s.xb.data());
    }
    matmul(s.hb.data(), s.xb.data(), w.w1.data(), dim, hidden_dim);
    matmul(s.hb2.data(), s.xb.data(), w.w3.data(), dim, hidden_dim);
    for (int64_t i = 0; i < hidden_dim; i++) {
      float val = s.hb[i];
      val = fam_.activation == FfnActivation::kSilu ? val * (1.0f / (1.0f + std::exp(-val))) : gelu_tanh(val);
      s.hb[i] = val * s.hb2[i];
    }
    if (!w.ffn_sub_norm.empty()) rmsnorm(s.hb.data(), s.hb.data(), w.ffn_sub_norm.data(), hidden_dim, eps);
    matmul(s.xb2.data(), s.hb.data(), w.w2.data(), hidden_dim, dim);
    if (!w.post_ffn_norm.empty()) rmsnorm(s.xb2.data(), s.xb2.data(), w.post_ffn_norm.data(), dim, eps);
    for (int64_t i = 0; i < dim; i++) x[i] += s.xb2[i] * (p.f_residual_scale > 0 ? p.f_residual_scale : 1.0f);
  }

  // final rmsnorm and classifier into logits, then the family's logit scale and cap
  rmsnorm(s.xn.data(), x, output_norm_.data(), dim, eps);
  matmul(s.logits.data(), s.xn.data(), output_.data(), dim, p.n_vocab);
  for (float& z : s.logits) {
    if (p.f_logit_scale > 0) z /= p.f_logit_scale;
    if (p.f_final_softcap > 0) z = p.f_final_softcap * std::tanh(z / p.f_final_softcap);
  }
  return s.logits;
}

}  // namespace llmesh::engine
