// The SIMD activation quantizers (run before every matmul) against the scalar
// reference, byte for byte: quantized values, scales, block sums, and the
// edge cases the scalar code defines (zero blocks, ties of |x| with both
// signs, values exactly halfway between two quantization steps).
#include <cstring>
#include <random>
#include <vector>

#include "engine-svc/src/kernels.h"
#include "gtest/gtest.h"
#include "llmesh/engine/matmul.h"

namespace llmesh::engine::internal {
namespace {

using QuantizeFn = void (*)(ActKind, const float*, void*, int64_t);

std::vector<float> Inputs(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  // Block 0 all zero; block 1: the largest |x| twice with opposite signs,
  // negative first; block 2: values on exact .5 steps of d = 127 / 127.
  for (int j = 0; j < 256 && j < n; ++j) x[j] = 0.0f;
  if (n >= 512) {
    x[256 + 5] = -9.0f;
    x[256 + 200] = 9.0f;
  }
  if (n >= 768) {
    for (int j = 0; j < 256; ++j) x[512 + j] = (j % 255) - 127 + 0.5f * (j & 1);
  }
  return x;
}

void ExpectSameBytes(QuantizeFn fn, const char* name) {
  for (ActKind kind : {ActKind::kQ8, ActKind::kQ8K}) {
    for (int64_t n : {256, 768, 2048, 5632}) {
      const std::vector<float> x = Inputs(n, static_cast<uint32_t>(n));
      const size_t bytes = ActRowBytes(kind, n);
      std::vector<uint8_t> want(bytes, 0), got(bytes, 0);
      QuantizeActScalar(kind, x.data(), want.data(), n);
      fn(kind, x.data(), got.data(), n);
      EXPECT_EQ(std::memcmp(want.data(), got.data(), bytes), 0)
          << name << " kind " << static_cast<int>(kind) << " n " << n;
    }
  }
}

TEST(QuantizeActTest, Avx2MatchesScalarBitExact) {
  if (DetectedSimdLevel() < SimdLevel::kAvx2) GTEST_SKIP() << "no AVX2";
  ExpectSameBytes(&QuantizeActAvx2, "avx2");
}

TEST(QuantizeActTest, Avx512MatchesScalarBitExact) {
  if (DetectedSimdLevel() < SimdLevel::kAvx512) GTEST_SKIP() << "no AVX-512";
  ExpectSameBytes(&QuantizeActAvx512, "avx512");
}

}  // namespace
}  // namespace llmesh::engine::internal
