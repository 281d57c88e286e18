#include "hnsw_graph.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace llmesh::rag {

using hnswlib::tableint;

void HnswGraph::Insert(const float* v, hnswlib::labeltype label) {
  if (cur_element_count >= max_elements_) throw std::runtime_error("the graph is full");
  const auto cur = static_cast<tableint>(cur_element_count);
  const int level = getRandomLevel(mult_);
  char* links = nullptr;
  if (level > 0) {
    // hnswlib's own size, so its destructor and saveIndex treat it as theirs.
    const size_t bytes = size_links_per_element_ * static_cast<size_t>(level) + 1;
    links = static_cast<char*>(std::calloc(1, bytes));
    if (links == nullptr) throw std::runtime_error("out of memory for a link list");
  }
  ++cur_element_count;
  label_lookup_[label] = cur;
  element_levels_[cur] = level;
  linkLists_[cur] = links;
  std::memset(data_level0_memory_ + cur * size_data_per_element_ + offsetLevel0_, 0, size_data_per_element_);
  std::memcpy(getExternalLabeLp(cur), &label, sizeof(label));
  std::memcpy(getDataByInternalId(cur), v, data_size_);

  if (enterpoint_node_ == static_cast<tableint>(-1)) {  // the first node
    enterpoint_node_ = cur;
    maxlevel_ = level;
    return;
  }
  const tableint entry = enterpoint_node_;
  const int top = maxlevel_;
  tableint from = entry;
  // Greedy descent to the new node's own top level.
  if (level < top) {
    float best = fstdistfunc_(v, getDataByInternalId(from), dist_func_param_);
    for (int l = top; l > level; --l) {
      for (bool moved = true; moved;) {
        moved = false;
        hnswlib::linklistsizeint* list = get_linklist(from, l);
        const auto* ids = reinterpret_cast<const tableint*>(list + 1);
        for (size_t i = 0, n = getListCount(list); i < n; ++i) {
          float d = fstdistfunc_(v, getDataByInternalId(ids[i]), dist_func_param_);
          if (d < best) {
            best = d;
            from = ids[i];
            moved = true;
          }
        }
      }
    }
  }
  const bool entry_deleted = isMarkedDeleted(entry);
  for (int l = std::min(level, top); l >= 0; --l) {
    auto candidates = searchBaseLayer(from, v, l);  // live nodes only
    if (entry_deleted) {
      candidates.emplace(fstdistfunc_(v, getDataByInternalId(entry), dist_func_param_), entry);
      if (candidates.size() > ef_construction_) candidates.pop();
    }
    // `from` is on level l: the entry point, a node reached on a level above,
    // or one linked on level l + 1.
    if (candidates.empty()) candidates.emplace(fstdistfunc_(v, getDataByInternalId(from), dist_func_param_), from);
    from = mutuallyConnectNewElement(v, cur, candidates, l, false);
  }
  if (level > top) {
    enterpoint_node_ = cur;
    maxlevel_ = level;
  }
}

}  // namespace llmesh::rag
