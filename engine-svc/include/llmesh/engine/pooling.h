// Pooling: how a sentence embedding is made from the hidden states of its
// tokens, shared by the decoder (llama) and encoder (bert) embedding paths.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace llmesh::engine {

// kDefault is the model's own choice: a bert file's `bert.pooling_type`,
// mean for a llama model. It is resolved before any pooling happens.
enum class Pooling { kDefault, kMean, kLast, kCls };
std::string_view PoolingName(Pooling pooling);

// Pools `rows` (n_rows, width), row-major, into one vector and L2-normalises
// it: the mean of the rows (accumulated in double: long inputs sum many
// rows), the last row, or the first ([CLS]) row. kDefault pools as kMean.
// n_rows == 0 gives a zero vector.
std::vector<float> PoolAndNormalizeRows(const float* rows, int64_t n_rows, int64_t width,
                                        Pooling pooling);

}  // namespace llmesh::engine
