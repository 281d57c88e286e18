// The attention key/value cache, behind an interface so the storage can
// change (contiguous per sequence now, a paged block pool with block tables
// next) without touching the attention code.
//
// The forward pass writes one K row and one V row per (sequence, layer,
// position) and reads them back a span of consecutive positions at a time:
// spans start at multiples of span_size() and never cross one, which is
// exactly what a paged cache with span_size() == block size can provide.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "llmesh/engine/batch.h"

namespace llmesh::engine {

// Positions [pos0, pos0 + n) of one (sequence, layer). Row r's key is
// k + r * k_stride (n_embd_k floats), its value v + r * v_stride.
struct KvSpan {
  const float* k = nullptr;
  const float* v = nullptr;
  int32_t pos0 = 0;
  int32_t n = 0;
  size_t k_stride = 0;
  size_t v_stride = 0;
};

class KvCache {
 public:
  KvCache(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v, int32_t n_ctx)
      : n_layer_(n_layer), n_embd_k_(n_embd_k), n_embd_v_(n_embd_v), n_ctx_(n_ctx) {}
  virtual ~KvCache() = default;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t n_layer() const { return n_layer_; }
  int64_t n_embd_k() const { return n_embd_k_; }  // floats per K row (n_head_kv * head_dim)
  int64_t n_embd_v() const { return n_embd_v_; }
  int32_t n_ctx() const { return n_ctx_; }  // most positions one sequence may hold

  // Positions [0, SeqLength) of `seq` hold valid K/V; 0 for an unknown seq.
  virtual int32_t SeqLength(SeqId seq) const = 0;
  // Makes positions [0, n_pos) of `seq` writable (creating the sequence) and
  // sets its length to n_pos: writing positions p..q defines the sequence's
  // end as q, dropping anything cached beyond. RESOURCE_EXHAUSTED when full.
  virtual absl::Status Prepare(SeqId seq, int32_t n_pos) = 0;
  // Where to store K / V of (seq, layer, pos); valid until the next Prepare.
  virtual float* KRow(SeqId seq, int64_t layer, int32_t pos) = 0;
  virtual float* VRow(SeqId seq, int64_t layer, int32_t pos) = 0;

  virtual int32_t span_size() const = 0;
  // The span holding positions [pos0, pos0 + n); pos0 % span_size() == 0 and
  // n <= span_size(). Const and thread-safe: attention calls it from workers.
  virtual KvSpan Span(SeqId seq, int64_t layer, int32_t pos0, int32_t n) const = 0;

  virtual void RemoveSeq(SeqId seq) = 0;
  virtual void Clear() = 0;
  // The first position of `seq` whose K/V every layer still holds: 0 unless
  // sliding-window layers released older ones (kv_model.h).
  virtual int32_t FirstKept(SeqId) const { return 0; }
  // Called when a Decode has written all its rows of `seq`: a windowed cache
  // lets go of what the next position's window no longer covers.
  virtual void Trim(SeqId) {}
  virtual size_t BytesAllocated() const = 0;

 protected:
  const int64_t n_layer_, n_embd_k_, n_embd_v_;
  const int32_t n_ctx_;
};

// One growable K and V array per (sequence, layer), F32:
//   k[layer]: (capacity, n_embd_k)   v[layer]: (capacity, n_embd_v)
// Capacity grows in whole spans (doubling), up to n_ctx.
class ContiguousKvCache final : public KvCache {
 public:
  // max_seqs bounds how many sequences may exist at once (0 = unbounded).
  ContiguousKvCache(int64_t n_layer, int64_t n_embd_k, int64_t n_embd_v, int32_t n_ctx,
                    int32_t span_size = 256, int32_t max_seqs = 0);

  int32_t SeqLength(SeqId seq) const override;
  absl::Status Prepare(SeqId seq, int32_t n_pos) override;
  float* KRow(SeqId seq, int64_t layer, int32_t pos) override;
  float* VRow(SeqId seq, int64_t layer, int32_t pos) override;
  int32_t span_size() const override { return span_size_; }
  KvSpan Span(SeqId seq, int64_t layer, int32_t pos0, int32_t n) const override;
  void RemoveSeq(SeqId seq) override;
  void Clear() override;
  size_t BytesAllocated() const override;

 private:
  struct Seq {
    int32_t length = 0;
    int32_t capacity = 0;               // positions allocated per layer
    std::vector<std::vector<float>> k;  // (n_layer)(capacity, n_embd_k)
    std::vector<std::vector<float>> v;  // (n_layer)(capacity, n_embd_v)
  };
  const Seq* Find(SeqId seq) const;

  const int32_t span_size_;
  const int32_t max_seqs_;
  std::unordered_map<SeqId, std::unique_ptr<Seq>> seqs_;
};

}  // namespace llmesh::engine
