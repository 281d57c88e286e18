// Load-time repacking of weight matrices into the layout the batched VNNI
// kernels want (16 rows interleaved; see src/packed_layout.h). MatMul uses a
// matrix's packed copy when it has one and the active SIMD level can read
// it, and the GGUF rows otherwise, so the mmapped original stays the source
// of truth (reference paths, embedding lookups, lower SIMD levels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "llmesh/engine/matmul.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::engine {

// Whether PackedWeights::Pack would pack `w` on this CPU: Q4_0 / Q8_0 /
// Q4_K / Q5_K / Q6_K matrices with a multiple of 16 rows, AVX-512 VNNI
// detected, and LLMESH_NO_REPACK unset in the environment (for A/B
// measurements).
bool WantsPacking(const WeightView& w);

// Owns packed copies; lives as long as the views that point into it.
class PackedWeights {
 public:
  // Packs `w` in place (sets w->packed) when WantsPacking(*w). With the
  // `source` file that `w` views, the original rows' pages are then dropped
  // from memory (they fault back in if a reference path reads them), so a
  // packed model is resident once, not twice.
  void Pack(WeightView* w, const gguf::GgufFile* source = nullptr);
  size_t bytes() const { return bytes_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::vector<std::unique_ptr<uint8_t, Free>> buffers_;
  size_t bytes_ = 0;
};

}  // namespace llmesh::engine
