// Reference llama forward pass, read top to bottom like run.c. No threads,
// no batching, no cleverness: the fast path must agree with this.
#include "llmesh/engine/llama_reference.h"

#include <algorithm>
#include <cmath>

namespace llmesh::engine {
namespace {

// All rows of `w` as floats, appended to `out`.
void Dequantize(const WeightView& w, std::vector<float>& out) {
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(w.n_out * w.n_in));
  for (int64_t r = 0; r < w.n_out; ++r) DequantizeWeightRow(w, r, out.data() + at + r * w.n_in);
}

void Append(const float* v, int64_t n, std::vector<float>& out) { out.insert(out.end(), v, v + n); }

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

}  // namespace

LlamaReference::LlamaReference(const Model& model, int32_t n_ctx)
    : p_(model.params()),
      n_ctx_(n_ctx > 0 ? n_ctx : static_cast<int32_t>(model.params().n_ctx_train)) {
  const ModelParams& p = p_;
  Dequantize(model.tok_embd(), w_.token_embd);
  for (const LayerWeights& L : model.layers()) {
    Append(L.attn_norm, p.n_embd, w_.attn_norm);
    Dequantize(L.wq, w_.wq);
    Dequantize(L.wk, w_.wk);
    Dequantize(L.wv, w_.wv);
    if (L.bq) Append(L.bq, p.n_embd_q(), w_.bq);
    if (L.bk) Append(L.bk, p.n_embd_k_gqa(), w_.bk);
    if (L.bv) Append(L.bv, p.n_embd_v_gqa(), w_.bv);
    Dequantize(L.wo, w_.wo);
    Append(L.ffn_norm, p.n_embd, w_.ffn_norm);
    Dequantize(L.w_gate, w_.w1);
    Dequantize(L.w_up, w_.w3);
    Dequantize(L.w_down, w_.w2);
  }
  Append(model.output_norm(), p.n_embd, w_.output_norm);
  Dequantize(model.output(), w_.output);
  if (model.rope_freq_factors()) Append(model.rope_freq_factors(), p.n_rot / 2, w_.rope_factors);

  const int64_t n_q = p.n_embd_q(), n_k = p.n_embd_k_gqa(), n_v = p.n_embd_v_gqa();
  s_.x.resize(p.n_embd);
  s_.xb.resize(p.n_embd);
  s_.xb2.resize(p.n_embd);
  s_.q.resize(n_q);
  s_.k.resize(n_k);
  s_.v.resize(n_v);
  s_.att_out.resize(p.n_head * p.n_embd_head_v);
  s_.hb.resize(p.n_ff);
  s_.hb2.resize(p.n_ff);
  s_.att.resize(n_ctx_);
  s_.xn.resize(p.n_embd);
  s_.logits.resize(p.n_vocab);
  s_.key_cache.resize(static_cast<size_t>(p.n_layer) * n_ctx_ * n_k);
  s_.value_cache.resize(static_cast<size_t>(p.n_layer) * n_ctx_ * n_v);
}

const std::vector<float>& LlamaReference::Forward(int32_t token, int32_t pos) {
  const ModelParams& p = p_;
  const Weights& w = w_;
  RunState& s = s_;
  const int64_t dim = p.n_embd;
  const int64_t hd = p.n_embd_head_k;    // head size of q and k
  const int64_t hd_v = p.n_embd_head_v;  // head size of v
  const int64_t n_q = p.n_embd_q();
  const int64_t kv_dim = p.n_embd_k_gqa();
  const int64_t kv_dim_v = p.n_embd_v_gqa();
  const int64_t kv_mul = p.n_head / p.n_head_kv;  // query heads per kv head
  const int64_t hidden_dim = p.n_ff;
  float* x = s.x.data();

  // copy the token embedding into x
  std::copy_n(w.token_embd.data() + token * dim, dim, x);

  for (int64_t l = 0; l < p.n_layer; l++) {
    // attention rmsnorm
    rmsnorm(s.xb.data(), x, w.attn_norm.data() + l * dim, dim, p.f_norm_rms_eps);

    // key and value point to this position's row of the kv cache
    const size_t loff = static_cast<size_t>(l) * n_ctx_;
    float* k = s.key_cache.data() + (loff + pos) * kv_dim;
    float* v = s.value_cache.data() + (loff + pos) * kv_dim_v;

    // qkv matmuls for this position (+ qwen2 biases)
    matmul(s.q.data(), s.xb.data(), w.wq.data() + l * n_q * dim, dim, n_q);
    matmul(k, s.xb.data(), w.wk.data() + l * kv_dim * dim, dim, kv_dim);
    matmul(v, s.xb.data(), w.wv.data() + l * kv_dim_v * dim, dim, kv_dim_v);
    if (!w.bq.empty()) {
      for (int64_t i = 0; i < n_q; i++) s.q[i] += w.bq[l * n_q + i];
      for (int64_t i = 0; i < kv_dim; i++) k[i] += w.bk[l * kv_dim + i];
      for (int64_t i = 0; i < kv_dim_v; i++) v[i] += w.bv[l * kv_dim_v + i];
    }

    // RoPE: rotate pairs of dims of each q and k head by pos * freq.
    // llama (NORM) pairs dims (2i, 2i+1); qwen2 (NEOX) pairs (i, i + n_rot/2).
    for (int64_t i = 0; i < p.n_rot / 2; i++) {
      float freq = 1.0f / std::pow(p.rope_freq_base, 2.0f * i / static_cast<float>(p.n_rot));
      if (!w.rope_factors.empty()) freq /= w.rope_factors[i];
      const float val = static_cast<float>(pos) * p.rope_freq_scale * freq;
      const float fcr = std::cos(val), fci = std::sin(val);
      const int64_t a = p.rope_type == RopeType::kNorm ? 2 * i : i;
      const int64_t b = p.rope_type == RopeType::kNorm ? 2 * i + 1 : i + p.n_rot / 2;
      for (int64_t h = 0; h < p.n_head; h++) {
        float* vec = s.q.data() + h * hd;
        const float v0 = vec[a], v1 = vec[b];
        vec[a] = v0 * fcr - v1 * fci;
        vec[b] = v0 * fci + v1 * fcr;
      }
      for (int64_t h = 0; h < p.n_head_kv; h++) {
        float* vec = k + h * hd;
        const float v0 = vec[a], v1 = vec[b];
        vec[a] = v0 * fcr - v1 * fci;
        vec[b] = v0 * fci + v1 * fcr;
      }
    }

    // multihead attention: iterate over all heads
    for (int64_t h = 0; h < p.n_head; h++) {
      const float* q = s.q.data() + h * hd;
      float* att = s.att.data();
      // attention scores over every timestep up to and including pos
      for (int32_t t = 0; t <= pos; t++) {
        const float* kt = s.key_cache.data() + (loff + t) * kv_dim + (h / kv_mul) * hd;
        float score = 0.0f;
        for (int64_t i = 0; i < hd; i++) score += q[i] * kt[i];
        att[t] = score / std::sqrt(static_cast<float>(hd));
      }
      softmax(att, pos + 1);
      // weighted sum of the values
      float* xb = s.att_out.data() + h * hd_v;
      std::fill_n(xb, hd_v, 0.0f);
      for (int32_t t = 0; t <= pos; t++) {
        const float* vt = s.value_cache.data() + (loff + t) * kv_dim_v + (h / kv_mul) * hd_v;
        for (int64_t i = 0; i < hd_v; i++) xb[i] += att[t] * vt[i];
      }
    }

    // output projection and residual
    const int64_t n_att = p.n_head * hd_v;
    matmul(s.xb2.data(), s.att_out.data(), w.wo.data() + l * dim * n_att, n_att, dim);
    for (int64_t i = 0; i < dim; i++) x[i] += s.xb2[i];

    // ffn rmsnorm, then w2(silu(w1(x)) * w3(x))
    rmsnorm(s.xb.data(), x, w.ffn_norm.data() + l * dim, dim, p.f_norm_rms_eps);
    matmul(s.hb.data(), s.xb.data(), w.w1.data() + l * dim * hidden_dim, dim, hidden_dim);
    matmul(s.hb2.data(), s.xb.data(), w.w3.data() + l * dim * hidden_dim, dim, hidden_dim);
    for (int64_t i = 0; i < hidden_dim; i++) {
      float val = s.hb[i];
      val *= (1.0f / (1.0f + std::exp(-val)));  // silu
      s.hb[i] = val * s.hb2[i];
    }
    matmul(s.xb.data(), s.hb.data(), w.w2.data() + l * dim * hidden_dim, hidden_dim, dim);
    for (int64_t i = 0; i < dim; i++) x[i] += s.xb[i];
  }

  // final rmsnorm and classifier into logits
  rmsnorm(s.xn.data(), x, w.output_norm.data(), dim, p.f_norm_rms_eps);
  matmul(s.logits.data(), s.xn.data(), w.output.data(), dim, p.n_vocab);
  return s.logits;
}

}  // namespace llmesh::engine
