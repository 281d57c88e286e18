// Read-bandwidth probe: the roofline decode is judged against.
#include "llmesh/engine/membw.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace llmesh::engine {
namespace {

// Four independent accumulators so the loop is bound by loads, not by the
// add latency.
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint8_t* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), a0);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t SumScalar(const uint8_t* p, size_t bytes) {
  const auto* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
    s0 += q[i];
    s1 += q[i + 1];
    s2 += q[i + 2];
    s3 += q[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

}  // namespace

double MeasureReadBandwidth(ThreadPool& pool, size_t bytes) {
  bytes = std::max<size_t>(bytes & ~size_t{4095}, 1 << 20);
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  if (!buf) return 0.0;
  // Touch from the threads that will read it (first-touch placement).
  pool.ParallelFor(static_cast<int64_t>(bytes / 4096), [&](int64_t b, int64_t e) {
    std::memset(buf + b * 4096, 1, (e - b) * 4096);
  });
  const bool avx2 = __builtin_cpu_supports("avx2");
  std::vector<uint64_t> sink(pool.n_threads() * 8);
  double best = 0.0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.ParallelFor(static_cast<int64_t>(bytes / 4096), [&](int64_t b, int64_t e) {
      const uint8_t* p = buf + b * 4096;
      const size_t len = (e - b) * 4096;
      sink[(b * pool.n_threads() / std::max<int64_t>(1, bytes / 4096)) * 8] += avx2 ? SumAvx2(p, len) : SumScalar(p, len);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  std::free(buf);
  return best;
}

}  // namespace llmesh::engine
