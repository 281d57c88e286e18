// Small AVX2 helpers shared by the AVX2 kernel files (dot_avx2*.cc). Each
// carries its own target attribute, so the library still builds for
// baseline x86-64 and the helpers inline into the AVX2 kernels.
#pragma once

#include <immintrin.h>

#include "kernels.h"

namespace llmesh::engine::internal::avx2 {

__attribute__((target("avx2,fma,f16c"))) inline float Half(ggml_half h) { return _cvtsh_ss(h); }

// Sum of the 8 lanes.
__attribute__((target("avx2,fma,f16c"))) inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace llmesh::engine::internal::avx2
