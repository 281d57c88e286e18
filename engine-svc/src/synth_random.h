// The seeded random numbers of the model synthesizers (model_synth.cc,
// bert_synth.cc): every value a pure function of (seed, tensor name, row),
// so a synthesized file is the same whatever the thread count.
#pragma once

#include <cstdint>
#include <string_view>

#include "llmesh/engine/model_quantize.h"

namespace llmesh::engine::internal {

// FNV-1a of a tensor name.
uint64_t HashName(std::string_view s);

// Row `row` of a tensor: n values N(0, stddev) from a generator seeded by
// (seed, tensor_hash, row) alone.
void NormalRow(uint64_t seed, uint64_t tensor_hash, int64_t row, float stddev, float* out,
               int64_t n);

// NormalRow for every row of the tensor `name`, rows of n values.
RowFn NormalRows(uint64_t seed, std::string_view name, float stddev, int64_t n);

}  // namespace llmesh::engine::internal
