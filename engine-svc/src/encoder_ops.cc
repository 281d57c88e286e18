#include "llmesh/engine/encoder_ops.h"

#include <cmath>

namespace llmesh::engine {

void layer_norm(float* out, const float* x, const float* weight, const float* bias, int64_t n,
                float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / n);
  double sum2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    sum2 += static_cast<double>(d) * d;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum2 / n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - mean) * scale * weight[i] + bias[i];
}

void gelu(float* x, int64_t n) {
  constexpr float kSqrt2OverPi = static_cast<float>(0.7978845608028654);  // sqrt(2/pi)
  constexpr float kCoef = 0.044715f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + kCoef * v * v)));
  }
}

}  // namespace llmesh::engine
