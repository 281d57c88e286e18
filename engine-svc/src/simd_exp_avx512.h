// exp() on 16 floats with AVX-512F, shared by softmax (attention_ops.cc)
// and SwiGLU (ops.cc); callers check for AVX-512F at run time.
#pragma once

#include <immintrin.h>

namespace llmesh::engine::internal {

#pragma GCC push_options
#pragma GCC target("avx512f,fma")

// exp(x) for x <= 0 (softmax after subtracting the max): x = n ln2 + r with
// |r| <= ln2/2, exp(r) by its Taylor series to r^6 (truncation < 1.3e-7
// relative), times 2^n through vscalefps, which also flushes x < -104 to 0.
inline __m512 ExpNonPositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);  // ln2, split so n*hi
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);        // is exact
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

#pragma GCC pop_options

}  // namespace llmesh::engine::internal
