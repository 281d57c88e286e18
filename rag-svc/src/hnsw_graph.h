// The graph the dense index keeps: hnswlib's HierarchicalNSW with its own
// insert, which stays memory-safe in a graph that holds tombstones.
#pragma once

#include "inner_product_space.h"

namespace llmesh::rag {

class HnswGraph : public hnswlib::HierarchicalNSW<float> {
 public:
  using HierarchicalNSW::HierarchicalNSW;

  // A new node for `label`, which must not be in label_lookup_, in a graph
  // with room for it. hnswlib's addPoint, but for one case: when every node
  // the search on some level reaches from where the descent landed is a
  // tombstone (and the entry point, which it would add, is live), addPoint
  // hands mutuallyConnectNewElement no candidates and that reads back() of an
  // empty vector (hnswlib 0.6.2 and upstream). Here the node links to where
  // the search started instead, as addPoint does with a deleted entry point.
  void Insert(const float* v, hnswlib::labeltype label);
};

}  // namespace llmesh::rag
