// hnswlib as llmesh uses it, and the inner-product space its graph measures
// distances in.
//
// The rag library is built with NO_MANUAL_VECTORIZATION (rag-svc/CMakeLists.txt),
// which turns off hnswlib's USE_SSE code: its own SIMD distances and the
// `_mm_prefetch` hints in its graph walks. Those hints read the id one past the
// end of a neighbour list (`*(datal + j + 1)`), and an upper-level list is
// allocated with 1 spare byte where that read needs 4: a heap-buffer-overflow
// on every insert that walks a full upper-level list (hnswlib 0.6.2, Debian
// bookworm; still so upstream, nmslib/hnswlib#107, #578). The distance they
// took with them is supplied here instead.
#pragma once

#ifndef NO_MANUAL_VECTORIZATION
#error "hnswlib must be built with NO_MANUAL_VECTORIZATION: its USE_SSE prefetches read past its link lists"
#endif

#include <cstddef>
#include <cstring>

#include "hnswlib/hnswlib.h"

namespace llmesh::rag {

// Dot product in four independent 4-wide accumulators: GCC vector extensions
// compile to SSE on any x86-64 (and NEON on arm64) without -march flags, and
// the separate sums keep the loop from waiting on one add chain.
inline float Dot(const float* a, const float* b, size_t n) {
  using V4 = float __attribute__((vector_size(16)));
  V4 s0{}, s1{}, s2{}, s3{};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V4 a4[4], b4[4];
    std::memcpy(a4, a + i, sizeof(a4));  // the vectors need not be 16-byte aligned
    std::memcpy(b4, b + i, sizeof(b4));
    s0 += a4[0] * b4[0];
    s1 += a4[1] * b4[1];
    s2 += a4[2] * b4[2];
    s3 += a4[3] * b4[3];
  }
  V4 s = (s0 + s1) + (s2 + s3);
  float sum = (s[0] + s[1]) + (s[2] + s[3]);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// hnswlib's InnerProductSpace with the distance above: 1 - <a, b>, so that
// smaller is nearer.
class InnerProductSpace : public hnswlib::SpaceInterface<float> {
 public:
  explicit InnerProductSpace(size_t dim) : dim_(dim) {}
  size_t get_data_size() override { return dim_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return &Distance; }
  void* get_dist_func_param() override { return &dim_; }

 private:
  static float Distance(const void* a, const void* b, const void* dim) {
    return 1.0f - Dot(static_cast<const float*>(a), static_cast<const float*>(b), *static_cast<const size_t*>(dim));
  }

  size_t dim_;
};

}  // namespace llmesh::rag
