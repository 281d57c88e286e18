// Reference (de)quantizers of the ternary types (tq1_0, tq2_0), written from
// ggml's block definitions so files cross between llmesh and llama.cpp.
//
// Both store x = d * (t - 1), t in {0, 1, 2}, with d the block's largest
// magnitude (BitNet b1.58 weights are {-1, 0, +1} times one scale, so they
// round-trip exactly). The element orders:
//   tq2_0: element 128h + 32l + m is bits 2l..2l+1 of qs[32h + m].
//   tq1_0: a byte holds 5 trits as the base-3 fraction ceil(v * 256 / 243),
//          v = t0 t1 t2 t3 t4 read as a base-3 number, t0 most significant;
//          trit n is recovered as the top trit of (byte * 3^n mod 256), i.e.
//          ((byte * 3^n mod 256) * 3) >> 8. Elements:
//            32n + m          trit n of qs[m]       (m < 32, n < 5: 0..159)
//            160 + 16n + m    trit n of qs[32 + m]  (m < 16, n < 5: 160..239)
//            240 + 4n + j     trit n of qh[j]       (j < 4,  n < 4: 240..255,
//                                                    the 5th trit always 0)
#include <algorithm>
#include <cmath>

#include "llmesh/engine/quants.h"

namespace llmesh::engine {
namespace {

constexpr uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};

// Trit n of a tq1_0 byte.
inline int Trit(uint8_t byte, int n) {
  const uint8_t shifted = static_cast<uint8_t>(byte * kPow3[n]);
  return (shifted * 3) >> 8;
}

// x / d rounded to {0, 1, 2} (-1, 0, +1 shifted), as ggml's lroundf.
inline int TernaryOf(float x, float id) { return std::clamp(static_cast<int>(std::lround(x * id)), -1, 1) + 1; }

// The base-3 digits t[0..n) (most significant first) padded with zero trits
// to 5, as the byte whose top trit is t[0].
inline uint8_t PackTrits(const int* t, int n) {
  int v = 0;
  for (int i = 0; i < 5; ++i) v = v * 3 + (i < n ? t[i] : 0);
  return static_cast<uint8_t>((v * 256 + 242) / 243);  // ceiling division
}

float AbsMax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

}  // namespace

void dequantize_row_tq1_0(const block_tq1_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i, y += kQK_K) {
    const float d = fp16_to_fp32(x[i].d);
    for (int n = 0; n < 5; ++n) {
      for (int m = 0; m < 32; ++m) y[32 * n + m] = (Trit(x[i].qs[m], n) - 1) * d;
      for (int m = 0; m < 16; ++m) y[160 + 16 * n + m] = (Trit(x[i].qs[32 + m], n) - 1) * d;
    }
    for (int n = 0; n < 4; ++n) {
      for (int j = 0; j < 4; ++j) y[240 + 4 * n + j] = (Trit(x[i].qh[j], n) - 1) * d;
    }
  }
}

void dequantize_row_tq2_0(const block_tq2_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i, y += kQK_K) {
    const float d = fp16_to_fp32(x[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, l = e % 128 / 32, m = e % 32;
      y[e] = (((x[i].qs[32 * h + m] >> (2 * l)) & 3) - 1) * d;
    }
  }
}

void quantize_row_tq1_0(const float* x, block_tq1_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i, x += kQK_K) {
    const float d = AbsMax(x, kQK_K);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int t[5];
    for (int m = 0; m < 32; ++m) {
      for (int n = 0; n < 5; ++n) t[n] = TernaryOf(x[32 * n + m], id);
      y[i].qs[m] = PackTrits(t, 5);
    }
    for (int m = 0; m < 16; ++m) {
      for (int n = 0; n < 5; ++n) t[n] = TernaryOf(x[160 + 16 * n + m], id);
      y[i].qs[32 + m] = PackTrits(t, 5);
    }
    for (int j = 0; j < 4; ++j) {
      for (int n = 0; n < 4; ++n) t[n] = TernaryOf(x[240 + 4 * n + j], id);
      y[i].qh[j] = PackTrits(t, 4);
    }
  }
}

void quantize_row_tq2_0(const float* x, block_tq2_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i, x += kQK_K) {
    const float d = AbsMax(x, kQK_K);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    std::memset(y[i].qs, 0, sizeof(y[i].qs));
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, l = e % 128 / 32, m = e % 32;
      y[i].qs[32 * h + m] |= static_cast<uint8_t>(TernaryOf(x[e], id) << (2 * l));
    }
  }
}

}  // namespace llmesh::engine
