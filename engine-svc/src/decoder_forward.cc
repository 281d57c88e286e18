// The decoder graph of every family (family.h draws it with its optional
// steps), run over a whole Batch. The llama path, with no optional step:
//
//   x = token_embd[tokens]                                    (T, n_embd)
//   per layer:
//     xb = rms_norm(x) * attn_norm
//     q, k, v = xb @ Wq, Wk, Wv (+ biases);  rope(q, k) at each token's pos
//     kv[seq][layer][pos] = k, v
//     att = softmax(q k^T / sqrt(hd)) v   over the token's own sequence
//     x += att @ Wo            (BitNet: rms_norm(att) * attn_sub_norm first)
//     xb = rms_norm(x) * ffn_norm
//     x += (silu(xb @ Wgate) * (xb @ Wup)) @ Wdown
//   out = rms_norm(x[outputs]) * output_norm  (@ output for logits)
//
// RoPE angles follow ggml (rope.h) so the logits match llama.cpp closely,
// not just the reference.
#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "absl/strings/str_format.h"
#include "llmesh/engine/attention_ops.h"
#include "llmesh/engine/forward.h"
#include "llmesh/engine/ops.h"
#include "llmesh/engine/rope.h"

namespace llmesh::engine {
namespace {

// Below this many floats an elementwise step over the chunk's tokens runs on
// the calling thread: a parallel region costs more than the work (a few
// microseconds). On stories260K (64 wide) 4 streams decoded slower than one
// when every 4-token step split its norms across threads.
constexpr int64_t kParallelElements = 16 * 1024;
constexpr int64_t kParallelAttentionWork = 64 * 1024;
// Multiply-adds below which a matmul stays on the calling thread (a 64x172
// stories260K matrix for one token is 11K: pure synchronisation overhead).
constexpr int64_t kParallelMatMulWork = 256 * 1024;

// Rotates the first n_rot dims of every head in `x` (n_heads * head_dim
// floats) by the angles whose cos/sin are in cs (n_rot/2 pairs).
void ApplyRope(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, RopeType type,
               const float* cs) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      // NORM pairs adjacent dims; NEOX pairs dim i with dim i + n_rot/2.
      const int64_t a = type == RopeType::kNorm ? 2 * i : i;
      const int64_t b = type == RopeType::kNorm ? 2 * i + 1 : i + n_rot / 2;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

// A matrix product's per-tensor multiplier (W.scale), 1 for most files.
void ApplyScale(float* y, float s, int64_t n_tok, int64_t n) {
  if (s != 1.0f) scale(y, s, n_tok * n);
}

void AddBias(float* y, const float* b, int64_t n_tok, int64_t n) {
  if (b == nullptr) return;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += b[i];
  }
}

// llama4 / mistral3 query temperature at `pos`.
float AttnTemperature(const ModelParams& hp, int32_t pos) {
  return 1.0f + hp.f_attn_temp_scale *
                    std::log(std::floor(static_cast<float>(pos) / static_cast<float>(hp.n_attn_temp_floor_scale)) + 1.0f);
}

}  // namespace

std::span<const float> ForwardOutput::ForBatchEntry(int32_t b) const {
  auto it = std::lower_bound(batch_index.begin(), batch_index.end(), b);
  if (it == batch_index.end() || *it != b) return {};
  return Row(static_cast<int32_t>(it - batch_index.begin()));
}

std::unique_ptr<KvCache> MakeKvCache(const Model& model, int32_t n_ctx, int32_t max_seqs) {
  const ModelParams& hp = model.params();
  return std::make_unique<ContiguousKvCache>(hp.n_layer, hp.n_embd_k_gqa(), hp.n_embd_v_gqa(),
                                             n_ctx, /*span_size=*/256, max_seqs);
}

ForwardContext::ForwardContext(const Model& model, ThreadPool& pool, int32_t n_ubatch)
    : model_(model), pool_(pool), n_ubatch_(std::max(1, n_ubatch)) {}

void ForwardContext::Mm(const WeightView& w, const float* x, int64_t n_tok, float* y) {
  const bool small = n_tok * w.n_in * w.n_out < kParallelMatMulWork;
  MatMul(small ? serial_ : pool_, w, x, n_tok, y);
}

void ForwardContext::MmMany(std::initializer_list<const WeightView*> ws, const float* x, int64_t n_tok,
                            std::initializer_list<float*> ys) {
  int64_t work = 0;
  for (const WeightView* w : ws) work += n_tok * w->n_in * w->n_out;
  MatMulMany(work < kParallelMatMulWork ? serial_ : pool_, std::span(ws.begin(), ws.size()), x, n_tok,
             std::span(ys.begin(), ys.size()));
}

void ForwardContext::Reserve(int32_t n_tokens) {
  const ModelParams& hp = model_.params();
  const size_t T = static_cast<size_t>(n_tokens);
  auto grow = [](std::vector<float>& v, size_t n) {
    if (v.size() < n) v.resize(n);
  };
  grow(x_, T * hp.n_embd);
  grow(xb_, T * hp.n_embd);
  grow(xb2_, T * hp.n_embd);
  grow(q_, T * hp.n_embd_q());
  grow(k_, T * hp.n_embd_k_gqa());
  grow(v_, T * hp.n_embd_v_gqa());
  grow(att_, T * hp.n_head * hp.n_embd_head_v);
  grow(hb_, T * hp.n_ff);
  grow(hb2_, T * hp.n_ff);
  grow(rope_cs_, ropes_.size() * T * hp.n_rot);
}

absl::Status ForwardContext::Decode(const Batch& batch, KvCache& kv, ForwardOutput* out,
                                    OutputKind kind) {
  const ModelParams& hp = model_.params();
  if (auto s = batch.Validate(hp.n_vocab, kv.n_ctx()); !s.ok()) return s;
  if (kv.n_layer() != hp.n_layer || kv.n_embd_k() != hp.n_embd_k_gqa() ||
      kv.n_embd_v() != hp.n_embd_v_gqa()) {
    return absl::InvalidArgumentError("KV cache geometry does not match the model");
  }

  // Per sequence: positions consecutive from a start no later than the
  // cached length, so every position a token attends to is filled.
  struct SeqRange {
    int32_t first = -1, last = -1;
  };
  std::unordered_map<SeqId, SeqRange> ranges;
  for (int32_t i = 0; i < batch.n_tokens(); ++i) {
    SeqRange& r = ranges[batch.seq_id[i]];
    const int32_t p = batch.pos[i];
    if (r.first < 0) {
      const int32_t len = kv.SeqLength(batch.seq_id[i]);
      if (p > len) {
        return absl::InvalidArgumentError(
            absl::StrFormat("batch token %d: sequence %d starts at position %d but holds only %d",
                            i, batch.seq_id[i], p, len));
      }
      r.first = p;
    } else if (p != r.last + 1) {
      return absl::InvalidArgumentError(
          absl::StrFormat("batch token %d: sequence %d position %d does not follow %d", i,
                          batch.seq_id[i], p, r.last));
    }
    r.last = p;
  }
  // Sliding-window layers look back n_swa - 1 positions from the first
  // token; a cache that released them cannot serve it.
  if (hp.n_swa > 0 && !hp.swa_layers.empty()) {
    for (const auto& [seq, r] : ranges) {
      const int32_t need = std::max<int32_t>(0, r.first - static_cast<int32_t>(hp.n_swa) + 1);
      if (need < kv.FirstKept(seq)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "sequence %d: position %d needs K/V from %d, released by the sliding window (held from %d)", seq,
            r.first, need, kv.FirstKept(seq)));
      }
    }
  }
  for (const auto& [seq, r] : ranges) {
    if (auto s = kv.Prepare(seq, r.last + 1); !s.ok()) return s;
  }

  // Per thread: a row of scores for each query head of one K/V head.
  const size_t n_scores = static_cast<size_t>(pool_.n_threads()) * hp.n_gqa() * kv.n_ctx();
  if (scores_ctx_ < kv.n_ctx() || scores_.size() < n_scores) {
    scores_ctx_ = kv.n_ctx();
    scores_.assign(n_scores, 0.0f);
  }
  SetRopes(kv.n_ctx());
  const int32_t n_out = batch.n_outputs();
  out_hidden_.resize(static_cast<size_t>(n_out) * hp.n_embd);
  out->kind = kind;
  out->batch_index.clear();
  for (int32_t begin = 0; begin < batch.n_tokens(); begin += n_ubatch_) {
    RunChunk(batch, begin, std::min(batch.n_tokens(), begin + n_ubatch_), kv);
  }
  for (const auto& [seq, r] : ranges) kv.Trim(seq);
  for (int32_t i = 0; i < batch.n_tokens(); ++i) {
    if (batch.output[i]) out->batch_index.push_back(i);
  }

  if (kind == OutputKind::kEmbeddings) {
    out->width = hp.n_embd;
    out->data.assign(out_hidden_.begin(), out_hidden_.end());
    return absl::OkStatus();
  }
  out->width = hp.n_vocab;
  out->data.resize(static_cast<size_t>(n_out) * hp.n_vocab);
  if (n_out > 0) Mm(model_.output(), out_hidden_.data(), n_out, out->data.data());
  const int64_t n_logits = static_cast<int64_t>(n_out) * hp.n_vocab;
  if (hp.f_logit_scale > 0.0f) scale(out->data.data(), 1.0f / hp.f_logit_scale, n_logits);
  if (hp.f_final_softcap > 0.0f) softcap(out->data.data(), hp.f_final_softcap, n_logits);
  return absl::OkStatus();
}

void ForwardContext::SetRopes(int32_t n_ctx) {
  if (n_ctx == ropes_n_ctx_) return;  // the rotations depend on nothing else
  ropes_n_ctx_ = n_ctx;
  const ModelParams& hp = model_.params();
  ropes_.clear();
  layer_rope_.assign(static_cast<size_t>(hp.n_layer), -1);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    if (!hp.uses_rope(il)) continue;
    const RopeParams r = model_.LayerRope(il, n_ctx);
    auto it = std::find(ropes_.begin(), ropes_.end(), r);
    layer_rope_[il] = static_cast<int>(it - ropes_.begin());
    if (it == ropes_.end()) ropes_.push_back(r);
  }
}

void ForwardContext::RunChunk(const Batch& batch, int32_t begin, int32_t end, KvCache& kv) {
  const ModelParams& hp = model_.params();
  const Family& fam = model_.family();
  const int32_t T = end - begin;
  Reserve(T);
  const int64_t n_embd = hp.n_embd;
  const int64_t n_q = hp.n_embd_q(), n_k = hp.n_embd_k_gqa(), n_v = hp.n_embd_v_gqa();
  const int64_t hd_k = hp.n_embd_head_k;
  const int64_t n_att = hp.n_head * hp.n_embd_head_v;
  const int64_t n_ff = hp.n_ff;
  const float eps = hp.f_norm_rms_eps;
  const size_t cs_stride = static_cast<size_t>(T) * hp.n_rot;  // one rope variant's (T, n_rot)

  // Elementwise steps over the chunk's tokens, parallel only when it pays.
  auto for_tokens = [&](int64_t width, const std::function<void(int32_t)>& fn) {
    if (T * width < kParallelElements) {
      for (int32_t t = 0; t < T; ++t) fn(t);
    } else {
      pool_.ParallelFor(T, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) fn(static_cast<int32_t>(t));
      });
    }
  };
  // A sublayer's input: rms_norm(x) * pre_norm, or the stream itself for
  // families without pre-norms.
  auto sublayer_input = [&](const float* pre_norm) -> const float* {
    if (pre_norm == nullptr) return x_.data();
    for_tokens(n_embd, [&](int32_t t) {
      rms_norm(xb_.data() + t * n_embd, x_.data() + t * n_embd, pre_norm, n_embd, eps);
    });
    return xb_.data();
  };
  // x += sublayer output y (T, n_embd), through the optional post-norm and
  // residual multiplier.
  auto residual = [&](const float* post_norm, float* y) {
    if (post_norm != nullptr) {
      for_tokens(n_embd, [&](int32_t t) {
        rms_norm(y + t * n_embd, y + t * n_embd, post_norm, n_embd, eps);
      });
    }
    if (hp.f_residual_scale > 0.0f) scale(y, hp.f_residual_scale, static_cast<int64_t>(T) * n_embd);
    add(x_.data(), x_.data(), y, static_cast<int64_t>(T) * n_embd);
  };

  // Token embeddings and each token's RoPE angles (shared by all layers of a variant).
  float embd_scale = fam.embd_scale_sqrt ? std::sqrt(static_cast<float>(n_embd)) : 1.0f;
  if (hp.f_embedding_scale > 0.0f) embd_scale *= hp.f_embedding_scale;
  for_tokens(n_embd, [&](int32_t t) {
    float* xt = x_.data() + t * n_embd;
    DequantizeWeightRow(model_.tok_embd(), batch.token[begin + t], xt);
    if (embd_scale != 1.0f) scale(xt, embd_scale, n_embd);
    for (size_t r = 0; r < ropes_.size(); ++r) {
      RopeCosSin(ropes_[r], hp.n_rot, batch.pos[begin + t],
                 rope_cs_.data() + r * cs_stride + static_cast<size_t>(t) * hp.n_rot);
    }
  });

  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerWeights& L = model_.layers()[il];

    // ---- attention ----
    MmMany({&L.wq, &L.wk, &L.wv}, sublayer_input(L.attn_norm), T, {q_.data(), k_.data(), v_.data()});
    ApplyScale(q_.data(), L.scale.q, T, n_q);
    ApplyScale(k_.data(), L.scale.k, T, n_k);
    ApplyScale(v_.data(), L.scale.v, T, n_v);
    AddBias(q_.data(), L.bq, T, n_q);
    AddBias(k_.data(), L.bk, T, n_k);
    AddBias(v_.data(), L.bv, T, n_v);
    const int rope = layer_rope_[il];
    for_tokens(n_q + n_k, [&](int32_t t) {
      float* q = q_.data() + t * n_q;
      float* k = k_.data() + t * n_k;
      if (fam.qk_norm == QkNorm::kFullWidth) {
        rms_norm(q, q, L.q_norm, n_q, eps);
        rms_norm(k, k, L.k_norm, n_k, eps);
      } else if (fam.qk_norm == QkNorm::kPerHead) {
        for (int64_t h = 0; h < hp.n_head; ++h) rms_norm(q + h * hd_k, q + h * hd_k, L.q_norm, hd_k, eps);
        for (int64_t h = 0; h < hp.n_head_kv; ++h) rms_norm(k + h * hd_k, k + h * hd_k, L.k_norm, hd_k, eps);
      }
      if (rope >= 0) {
        const float* cs = rope_cs_.data() + rope * cs_stride + static_cast<size_t>(t) * hp.n_rot;
        ApplyRope(q, hp.n_head, hd_k, hp.n_rot, hp.rope_type, cs);
        ApplyRope(k, hp.n_head_kv, hd_k, hp.n_rot, hp.rope_type, cs);
      }
      if (hp.f_attn_temp_scale != 0.0f) scale(q, AttnTemperature(hp, batch.pos[begin + t]), n_q);
    });
    // K/V of the whole chunk go in before any attention, so prefill tokens
    // see the earlier tokens of their own batch.
    for (int32_t t = 0; t < T; ++t) {
      const SeqId s = batch.seq_id[begin + t];
      const int32_t p = batch.pos[begin + t];
      std::copy_n(k_.data() + t * n_k, n_k, kv.KRow(s, il, p));
      std::copy_n(v_.data() + t * n_v, n_v, kv.VRow(s, il, p));
    }
    Attention(batch, begin, T, il, kv);
    if (L.attn_sub_norm != nullptr) {
      for_tokens(n_att, [&](int32_t t) {
        rms_norm(att_.data() + t * n_att, att_.data() + t * n_att, L.attn_sub_norm, n_att, eps);
      });
    }
    Mm(L.wo, att_.data(), T, xb2_.data());
    ApplyScale(xb2_.data(), L.scale.o, T, n_embd);
    AddBias(xb2_.data(), L.bo, T, n_embd);
    residual(L.post_attn_norm, xb2_.data());

    // ---- feed-forward (gated: SwiGLU or GEGLU) ----
    MmMany({&L.w_gate, &L.w_up}, sublayer_input(L.ffn_norm), T, {hb_.data(), hb2_.data()});
    ApplyScale(hb_.data(), L.scale.gate, T, n_ff);
    ApplyScale(hb2_.data(), L.scale.up, T, n_ff);
    const bool gelu = fam.activation == FfnActivation::kGeluTanh;
    for_tokens(n_ff, [&](int32_t t) {
      float* g = hb_.data() + static_cast<size_t>(t) * n_ff;
      const float* u = hb2_.data() + static_cast<size_t>(t) * n_ff;
      gelu ? geglu(g, g, u, n_ff) : swiglu(g, g, u, n_ff);
      if (L.ffn_sub_norm != nullptr) rms_norm(g, g, L.ffn_sub_norm, n_ff, eps);
    });
    Mm(L.w_down, hb_.data(), T, xb2_.data());
    ApplyScale(xb2_.data(), L.scale.down, T, n_embd);
    residual(L.post_ffn_norm, xb2_.data());
  }

  // Final norm of the output tokens only; rows land in batch order.
  int32_t row = 0;
  for (int32_t i = 0; i < begin; ++i) row += batch.output[i] != 0;
  for (int32_t t = 0; t < T; ++t) {
    if (!batch.output[begin + t]) continue;
    rms_norm(out_hidden_.data() + static_cast<size_t>(row) * n_embd, x_.data() + t * n_embd,
             model_.output_norm(), n_embd, eps);
    ++row;
  }
}

void ForwardContext::Attention(const Batch& batch, int32_t begin, int32_t T, int64_t il,
                               const KvCache& kv) {
  const ModelParams& hp = model_.params();
  const int64_t hd_k = hp.n_embd_head_k, hd_v = hp.n_embd_head_v;
  const int64_t n_q = hp.n_embd_q();
  const int64_t n_att = hp.n_head * hd_v;
  const int64_t n_gqa = hp.n_gqa();
  const float kq_scale = hp.kq_scale();
  const float cap = hp.f_attn_softcap;
  // Sliding layers attend to the last n_swa positions, the token's own included.
  const int32_t window = hp.is_swa(il) ? static_cast<int32_t>(std::min<int64_t>(hp.n_swa, kv.n_ctx())) : 0;
  const int32_t span = kv.span_size();
  // A task is a block of query heads sharing one K/V head (GQA), so each
  // cached K/V row is loaded once for all of them. Blocks shrink only to give
  // every thread a few tasks (single-token decode of a model with few K/V heads).
  int64_t heads = n_gqa;
  while (heads % 2 == 0 && T * (hp.n_head / heads) < 4 * pool_.n_threads()) heads /= 2;
  const int64_t blocks = hp.n_head / heads;
  const int64_t n_tasks = static_cast<int64_t>(T) * blocks;

  auto task = [&](int64_t idx, float* scores) {
    const int32_t t = static_cast<int32_t>(idx / blocks);
    const int64_t h0 = idx % blocks * heads;
    const int64_t kvh = h0 / n_gqa;
    const SeqId seq = batch.seq_id[begin + t];
    const int32_t hi = batch.pos[begin + t] + 1;  // causal: positions [lo, pos]
    const int32_t lo = window > 0 ? std::max(0, hi - window) : 0;
    const int32_t n_kv = hi - lo;
    const float* q = q_.data() + t * n_q + h0 * hd_k;
    float* o = att_.data() + t * n_att + h0 * hd_v;
    const size_t ss = static_cast<size_t>(scores_ctx_);

    // Hot loops: q . k for every attended position, then the weighted sum of
    // the V rows, a span (or the part of one inside the window) at a time.
    auto for_spans = [&](const auto& fn) {
      for (int32_t p = lo; p < hi;) {
        const int32_t p0 = p - p % span;
        const KvSpan sp = kv.Span(seq, il, p0, std::min(span, hi - p0));
        const int32_t skip = p - p0;
        if (sp.n <= skip) break;  // not held: Decode's window check rules this out
        fn(sp, skip, sp.n - skip, p - lo);
        p = p0 + sp.n;
      }
    };
    for_spans([&](const KvSpan& sp, int32_t skip, int32_t n, int32_t at) {
      attn_scores(q, heads, sp.k + skip * sp.k_stride + kvh * hd_k, sp.k_stride, n, hd_k, kq_scale, scores + at, ss);
    });
    for (int64_t h = 0; h < heads; ++h) {
      if (cap > 0.0f) softcap(scores + h * ss, cap, n_kv);
      attn_softmax(scores + h * ss, n_kv);
    }
    std::fill_n(o, heads * hd_v, 0.0f);
    for_spans([&](const KvSpan& sp, int32_t skip, int32_t n, int32_t at) {
      attn_accumulate(scores + at, ss, heads, sp.v + skip * sp.v_stride + kvh * hd_v, sp.v_stride, n, hd_v, o);
    });
  };

  // Work in multiply-adds; small decode steps stay on the calling thread.
  int64_t work = 0;
  for (int32_t t = 0; t < T; ++t) {
    const int32_t n_kv = batch.pos[begin + t] + 1;
    work += (window > 0 ? std::min(n_kv, window) : n_kv) * hp.n_head * (hd_k + hd_v);
  }
  if (work < kParallelAttentionWork || pool_.n_threads() == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) task(i, scores_.data());
    return;
  }
  // Interleaved so causal prefill (later tokens cost more) spreads evenly.
  pool_.Run([&](int ith, int nth) {
    float* scores = scores_.data() + static_cast<size_t>(ith) * n_gqa * scores_ctx_;
    for (int64_t i = ith; i < n_tasks; i += nth) task(i, scores);
  });
}

}  // namespace llmesh::engine
