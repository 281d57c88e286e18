#include "llmesh/engine/pooling.h"

#include <cmath>

namespace llmesh::engine {

std::string_view PoolingName(Pooling pooling) {
  switch (pooling) {
    case Pooling::kDefault: return "default";
    case Pooling::kMean: return "mean";
    case Pooling::kLast: return "last";
    case Pooling::kCls: return "cls";
  }
  return "?";
}

std::vector<float> PoolAndNormalizeRows(const float* rows, int64_t n_rows, int64_t width,
                                        Pooling pooling) {
  std::vector<float> out(width, 0.0f);
  if (n_rows <= 0) return out;
  if (pooling == Pooling::kLast || pooling == Pooling::kCls) {
    const float* row = rows + (pooling == Pooling::kLast ? n_rows - 1 : 0) * width;
    out.assign(row, row + width);
  } else {
    std::vector<double> acc(width, 0.0);
    for (int64_t r = 0; r < n_rows; ++r) {
      const float* row = rows + r * width;
      for (int64_t i = 0; i < width; ++i) acc[i] += row[i];
    }
    for (int64_t i = 0; i < width; ++i) out[i] = static_cast<float>(acc[i] / n_rows);
  }
  double ss = 0.0;
  for (float v : out) ss += static_cast<double>(v) * v;
  const double norm = std::sqrt(ss);
  if (norm > 0.0) {
    for (float& v : out) v = static_cast<float>(v / norm);
  }
  return out;
}

}  // namespace llmesh::engine
