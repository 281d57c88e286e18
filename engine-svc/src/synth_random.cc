#include "synth_random.h"

#include <cmath>
#include <numbers>

namespace llmesh::engine::internal {
namespace {

uint64_t Mix(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t HashName(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return h;
}

void NormalRow(uint64_t seed, uint64_t tensor_hash, int64_t row, float stddev, float* out,
               int64_t n) {
  uint64_t state = Mix(seed ^ Mix(tensor_hash + static_cast<uint64_t>(row)));
  auto uniform = [&state]() {
    state += 0x9E3779B97F4A7C15ull;
    return (static_cast<double>(Mix(state) >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
  };
  for (int64_t i = 0; i < n; i += 2) {  // Box-Muller, two values per pair
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double th = 2.0 * std::numbers::pi * uniform();
    out[i] = static_cast<float>(stddev * r * std::cos(th));
    if (i + 1 < n) out[i + 1] = static_cast<float>(stddev * r * std::sin(th));
  }
}

RowFn NormalRows(uint64_t seed, std::string_view name, float stddev, int64_t n) {
  return [seed, h = HashName(name), stddev, n](int64_t row, float* out) {
    NormalRow(seed, h, row, stddev, out, n);
    return absl::OkStatus();
  };
}

}  // namespace llmesh::engine::internal
