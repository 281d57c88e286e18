// Reference (de)quantizers of the non-linear 4-bit types iq4_nl and iq4_xs.
//
// Both map a nibble through the same 16-entry grid (kValuesIq4nl), denser
// near zero where most weights are. The quantizer is ggml's reference search
// (quantize_row_iq4_nl_impl without an importance matrix): per 32-block, a
// least-squares scale for each of 15 candidate grid stretches, weighted by
// x^2 so large weights are fit best; iq4_xs then quantizes the 8 block
// scales of a superblock to 6 bits against one fp16 scale and refits the
// nibbles to the rounded scales.
#include <cmath>
#include <cstring>

#include "llmesh/engine/quants.h"

namespace llmesh::engine {
namespace {

// ggml's GROUP_MAX_EPS: a block this small is all zeros.
constexpr float kGroupMaxEps = 1e-15f;
// Candidate stretches on either side of the initial one.
constexpr int kTries = 7;

// For integer f in [-127, 112]: the first grid index whose value exceeds f.
// The grid is integral, so for x in [f, f + 1) that is the first value above
// x, where ggml's binary search ends: a table instead of 4 unpredictable
// branches per weight and candidate scale (quantizing took minutes).
struct GridUpper {
  uint8_t idx[240];
  constexpr GridUpper() : idx() {
    for (int f = -127; f <= 112; ++f) {
      int i = 0;
      while (kValuesIq4nl[i] <= f) ++i;
      idx[f + 127] = static_cast<uint8_t>(i);
    }
  }
};
constexpr GridUpper kGridUpper;

// The index of the grid value nearest to x (ties to the upper value, as ggml).
int NearestGridIndex(float x) {
  const int8_t* v = kValuesIq4nl;
  if (!(x > v[0])) return 0;  // NaN too: no index from it
  if (x >= v[15]) return 15;
  const int hi = kGridUpper.idx[static_cast<int>(std::floor(x)) + 127];
  return x - v[hi - 1] < v[hi] - x ? hi - 1 : hi;
}

// The weighted least-squares scale of one 32-block (0 for an all-zero block).
float FitBlockScale(const float* x) {
  float weight[kQK];
  float amax = 0, max = 0;
  for (int j = 0; j < kQK; ++j) {
    weight[j] = x[j] * x[j];
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kGroupMaxEps) return 0;
  const int8_t* v = kValuesIq4nl;
  // Start with the largest magnitude on the grid's far end, v[0] = -127.
  float id = 1 / (-max / v[0]);
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < kQK; ++j) {
    const float q = v[NearestGridIndex(id * x[j])];
    sumqx += weight[j] * q * x[j];
    sumq2 += weight[j] * q * q;
  }
  float d = sumqx / sumq2;
  float best = d * sumqx;
  // Then stretch the grid (negative id: the sign-flipped fit) and keep the
  // scale with the smallest weighted error, i.e. the largest sumqx^2/sumq2.
  for (int itry = -kTries; itry <= kTries; ++itry) {
    id = (itry + v[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < kQK; ++j) {
      const float q = v[NearestGridIndex(id * x[j])];
      sumqx += weight[j] * q * x[j];
      sumq2 += weight[j] * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// Nibbles of one 32-block: element j < 16 low, j + 16 high, as q4_0.
void PackNibbles(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + kQK / 2] << 4));
}

void IndicesForScale(const float* x, float d, uint8_t* L) {
  const float id = d ? 1 / d : 0.0f;
  for (int j = 0; j < kQK; ++j) L[j] = static_cast<uint8_t>(NearestGridIndex(id * x[j]));
}

}  // namespace

void dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i, y += kQK) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * kValuesIq4nl[x[i].qs[j] & 0xF];
      y[j + kQK / 2] = d * kValuesIq4nl[x[i].qs[j] >> 4];
    }
  }
}

void dequantize_row_iq4_xs(const block_iq4_xs* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int ib = 0; ib < kQK_K / kQK; ++ib, y += kQK) {
      const float dl = d * (iq4_xs_scale(x[i], ib) - 32);
      const uint8_t* qs = x[i].qs + ib * kQK / 2;
      for (int j = 0; j < kQK / 2; ++j) {
        y[j] = dl * kValuesIq4nl[qs[j] & 0xF];
        y[j + kQK / 2] = dl * kValuesIq4nl[qs[j] >> 4];
      }
    }
  }
}

void quantize_row_iq4_nl(const float* x, block_iq4_nl* y, int64_t k) {
  uint8_t L[kQK];
  for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
    const float d = FitBlockScale(x);
    y[i].d = fp32_to_fp16(d);
    // Refit to the float scale (an all-zero block maps to the grid's 1).
    IndicesForScale(x, d, L);
    PackNibbles(L, y[i].qs);
  }
}

void quantize_row_iq4_xs(const float* x, block_iq4_xs* y, int64_t k) {
  constexpr int kBlocks = kQK_K / kQK;
  uint8_t L[kQK];
  float scales[kBlocks];
  for (int64_t i = 0; i < k / kQK_K; ++i, x += kQK_K) {
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < kBlocks; ++ib) {
      scales[ib] = FitBlockScale(x + ib * kQK);
      if (std::fabs(scales[ib]) > amax_scale) {
        amax_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    // The largest block scale becomes -32 * d, the 6-bit range's far end.
    const float d = -max_scale / 32;
    const float id = d ? 1 / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].scales_h = 0;
    std::memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
    for (int ib = 0; ib < kBlocks; ++ib) {
      int l = nearest_int(id * scales[ib]);
      l = l < -32 ? -32 : l > 31 ? 31 : l;
      // Nibbles for the scale as stored (float d, not its fp16 rounding, as ggml).
      IndicesForScale(x + ib * kQK, d * l, L);
      PackNibbles(L, y[i].qs + ib * kQK / 2);
      const int ls = l + 32;
      y[i].scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (ib % 2)));
      y[i].scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
    }
  }
}

}  // namespace llmesh::engine
