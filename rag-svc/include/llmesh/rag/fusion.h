// Reciprocal rank fusion (Cormack et al., 2009): score(d) = sum over the
// ranked lists of 1 / (k + rank(d)), rank 1-based, k = 60.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace llmesh::rag {

inline constexpr double kRrfK = 60.0;

// Each list holds ids best first. Result: (id, fused score), best first; ties
// broken by the smaller id so the order is deterministic.
std::vector<std::pair<int64_t, double>> ReciprocalRankFusion(const std::vector<std::vector<int64_t>>& lists,
                                                             double k = kRrfK);

}  // namespace llmesh::rag
