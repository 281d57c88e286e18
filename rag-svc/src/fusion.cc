#include "llmesh/rag/fusion.h"

#include <algorithm>
#include <unordered_map>

namespace llmesh::rag {

std::vector<std::pair<int64_t, double>> ReciprocalRankFusion(const std::vector<std::vector<int64_t>>& lists,
                                                             double k) {
  std::unordered_map<int64_t, double> scores;
  for (const auto& list : lists)
    for (size_t rank = 0; rank < list.size(); ++rank) scores[list[rank]] += 1.0 / (k + static_cast<double>(rank + 1));
  std::vector<std::pair<int64_t, double>> out(scores.begin(), scores.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

}  // namespace llmesh::rag
