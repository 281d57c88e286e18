// Memory read bandwidth of this machine, measured the way decode reads
// weights: every thread streams its share of a buffer much larger than the
// last-level cache. `llmesh bench` divides decode bytes/s by this.
#pragma once

#include <cstddef>

#include "llmesh/engine/thread_pool.h"

namespace llmesh::engine {

// GB/s (1e9 bytes/s), best of a few passes over a `bytes`-sized buffer
// (at least 256 MiB is sensible). Allocates and touches the buffer first.
double MeasureReadBandwidth(ThreadPool& pool, size_t bytes);

}  // namespace llmesh::engine
