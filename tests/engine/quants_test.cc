// Block formats: dequantizers bit-exact against an independent reference
// written here from the format definitions (loop structure of ggml's), and
// quantize -> dequantize error bounds per type.
#include "llmesh/engine/quants.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace llmesh::engine {
namespace {

// Independent half -> float via ldexp.
float H(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0 ? std::ldexp(float(man), -24) : std::ldexp(float(man | 1024), exp - 25);
  return sign ? -v : v;
}

// Random bytes, but every fp16 field finite (exponent 31 is inf/NaN).
uint16_t RandomHalf(std::mt19937& rng) {
  uint16_t h = rng() & 0xFFFF;
  if (((h >> 10) & 31) == 31) h &= ~(1u << 14);
  return h;
}

template <class B>
std::vector<B> RandomBlocks(int n, std::mt19937& rng) {
  std::vector<B> v(n);
  auto* p = reinterpret_cast<uint8_t*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(B); ++i) p[i] = rng() & 0xFF;
  return v;
}

std::vector<float> RefDequant(GgmlType type, const void* data, int nblk) {
  std::vector<float> y;
  switch (type) {
    case GgmlType::kQ4_0:
      for (int i = 0; i < nblk; ++i) {
        auto& b = static_cast<const block_q4_0*>(data)[i];
        std::vector<float> out(32);
        for (int j = 0; j < 16; ++j) {
          out[j] = H(b.d) * ((b.qs[j] & 15) - 8);
          out[j + 16] = H(b.d) * ((b.qs[j] >> 4) - 8);
        }
        y.insert(y.end(), out.begin(), out.end());
      }
      break;
    case GgmlType::kQ4_1:
      for (int i = 0; i < nblk; ++i) {
        auto& b = static_cast<const block_q4_1*>(data)[i];
        std::vector<float> out(32);
        for (int j = 0; j < 16; ++j) {
          out[j] = (b.qs[j] & 15) * H(b.d) + H(b.m);
          out[j + 16] = (b.qs[j] >> 4) * H(b.d) + H(b.m);
        }
        y.insert(y.end(), out.begin(), out.end());
      }
      break;
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
      for (int i = 0; i < nblk; ++i) {
        const bool one = type == GgmlType::kQ5_1;
        const auto* p = static_cast<const uint8_t*>(data) + i * (one ? 24 : 22);
        uint16_t d, m = 0;
        std::memcpy(&d, p, 2);
        if (one) std::memcpy(&m, p + 2, 2);
        const uint8_t* qh = p + (one ? 4 : 2);
        const uint8_t* qs = qh + 4;
        for (int j = 0; j < 32; ++j) {
          const int lo = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
          const int hi = (qh[j / 8] >> (j % 8)) & 1;
          const int q = lo + 16 * hi;
          y.push_back(one ? q * H(d) + H(m) : (q - 16) * H(d));
        }
      }
      break;
    case GgmlType::kQ8_0:
      for (int i = 0; i < nblk; ++i) {
        auto& b = static_cast<const block_q8_0*>(data)[i];
        for (int j = 0; j < 32; ++j) y.push_back(b.qs[j] * H(b.d));
      }
      break;
    case GgmlType::kQ2_K:
      for (int i = 0; i < nblk; ++i) {
        auto& b = static_cast<const block_q2_K*>(data)[i];
        const uint8_t* q = b.qs;
        int is = 0;
        for (int n = 0; n < 256; n += 128, q += 32) {
          for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; ++half) {
              const uint8_t sc = b.scales[is++];
              for (int l = 0; l < 16; ++l) {
                y.push_back(H(b.d) * (sc & 15) * ((q[l + 16 * half] >> shift) & 3) - H(b.dmin) * (sc >> 4));
              }
            }
          }
        }
      }
      break;
    case GgmlType::kQ3_K:
      for (int i = 0; i < nblk; ++i) {
        auto& b = static_cast<const block_q3_K*>(data)[i];
        int sc[16];
        for (int j = 0; j < 16; ++j) {
          const int lo = (b.scales[j % 8] >> (4 * (j / 8))) & 15;
          const int hi = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
          sc[j] = (lo | hi << 4) - 32;
        }
        const uint8_t* q = b.qs;
        int is = 0, m = 1;
        for (int n = 0; n < 256; n += 128, q += 32) {
          for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
            for (int half = 0; half < 2; ++half) {
              const float dl = H(b.d) * sc[is++];
              for (int l = 16 * half; l < 16 * half + 16; ++l) {
                y.push_back(dl * (((q[l] >> shift) & 3) - ((b.hmask[l] & m) ? 0 : 4)));
              }
            }
          }
        }
      }
      break;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
      for (int i = 0; i < nblk; ++i) {
        const bool five = type == GgmlType::kQ5_K;
        const auto* p = static_cast<const uint8_t*>(data) + i * (five ? 176 : 144);
        uint16_t d, dmin;
        std::memcpy(&d, p, 2);
        std::memcpy(&dmin, p + 2, 2);
        const uint8_t* s = p + 4;
        const uint8_t* qh = p + 16;
        const uint8_t* ql = p + (five ? 48 : 16);
        for (int j = 0; j < 8; ++j) {
          int sc, mn;
          if (j < 4) {
            sc = s[j] & 63;
            mn = s[j + 4] & 63;
          } else {
            sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
            mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
          }
          for (int l = 0; l < 32; ++l) {
            int q = (j % 2 == 0) ? ql[32 * (j / 2) + l] & 15 : ql[32 * (j / 2) + l] >> 4;
            if (five && (qh[l] & (1 << j))) q += 16;
            y.push_back(H(d) * sc * q - H(dmin) * mn);
          }
        }
      }
      break;
    case GgmlType::kQ6_K:
      for (int i = 0; i < nblk; ++i) {
        auto& b = static_cast<const block_q6_K*>(data)[i];
        float out[256];
        const uint8_t* ql = b.ql;
        const uint8_t* qh = b.qh;
        const int8_t* sc = b.scales;
        for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            out[n + l] = H(b.d) * sc[is] * (((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
            out[n + l + 32] = H(b.d) * sc[is + 2] * (((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
            out[n + l + 64] = H(b.d) * sc[is + 4] * (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            out[n + l + 96] = H(b.d) * sc[is + 6] * (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
          }
        }
        y.insert(y.end(), out, out + 256);
      }
      break;
    default:
      ADD_FAILURE() << "no reference";
  }
  return y;
}

template <class B>
void CheckDequantExact(GgmlType type, int block_elems) {
  std::mt19937 rng(static_cast<uint32_t>(type) * 7919);
  const int nblk = 9;
  auto blocks = RandomBlocks<B>(nblk, rng);
  // Finite fp16 scale fields.
  for (auto& b : blocks) {
    if constexpr (requires { b.d; }) {
      if constexpr (sizeof(b.d) == 2) b.d = RandomHalf(rng);
    }
    if constexpr (requires { b.m; }) b.m = RandomHalf(rng);
    if constexpr (requires { b.dmin; }) b.dmin = RandomHalf(rng);
  }
  std::vector<float> got(nblk * block_elems);
  ASSERT_TRUE(DequantizeRow(type, blocks.data(), got.data(), got.size()).ok());
  const std::vector<float> want = RefDequant(type, blocks.data(), nblk);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(fp32_to_bits(got[i]), fp32_to_bits(want[i]))
        << gguf::ggml_type_name(type) << " element " << i << ": " << got[i] << " vs " << want[i];
  }
}

TEST(QuantsTest, HalfConversionsRoundTripAndMatchReference) {
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 31) == 31) continue;
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    ASSERT_EQ(fp32_to_bits(f), fp32_to_bits(H(static_cast<uint16_t>(h)))) << h;
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
  }
  EXPECT_EQ(fp32_to_fp16(1.0f + 1.0f / 4096), fp32_to_fp16(1.0f));  // ties to even
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3F808000)), 0x3F80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3F818000)), 0x3F82);
}

TEST(QuantsTest, DequantizeMatchesIndependentReferenceBitExact) {
  CheckDequantExact<block_q4_0>(GgmlType::kQ4_0, 32);
  CheckDequantExact<block_q4_1>(GgmlType::kQ4_1, 32);
  CheckDequantExact<block_q5_0>(GgmlType::kQ5_0, 32);
  CheckDequantExact<block_q5_1>(GgmlType::kQ5_1, 32);
  CheckDequantExact<block_q8_0>(GgmlType::kQ8_0, 32);
  CheckDequantExact<block_q2_K>(GgmlType::kQ2_K, 256);
  CheckDequantExact<block_q3_K>(GgmlType::kQ3_K, 256);
  CheckDequantExact<block_q4_K>(GgmlType::kQ4_K, 256);
  CheckDequantExact<block_q5_K>(GgmlType::kQ5_K, 256);
  CheckDequantExact<block_q6_K>(GgmlType::kQ6_K, 256);
}

// Relative RMSE of quantize -> dequantize on Gaussian data; bounds are a
// little above what llama.cpp's reference quantizers achieve.
struct ErrorBound {
  GgmlType type;
  double max_rel_rmse;
};

class QuantizeErrorTest : public ::testing::TestWithParam<ErrorBound> {};

TEST_P(QuantizeErrorTest, RoundTripErrorWithinBound) {
  const auto [type, bound] = GetParam();
  const int64_t n = 256 * 64;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist;
  std::vector<float> x(n), y(n);
  for (float& v : x) v = dist(rng);
  std::vector<uint8_t> q(*gguf::ggml_row_size(type, n));
  ASSERT_TRUE(QuantizeRow(type, x.data(), q.data(), n).ok());
  ASSERT_TRUE(DequantizeRow(type, q.data(), y.data(), n).ok());
  double err = 0, sig = 0;
  for (int64_t i = 0; i < n; ++i) {
    err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    sig += double(x[i]) * x[i];
  }
  const double rel = std::sqrt(err / sig);
  EXPECT_LT(rel, bound) << gguf::ggml_type_name(type);
  RecordProperty("rel_rmse", std::to_string(rel));
  std::printf("%-5s rel rmse %.5f (bound %.4f)\n", std::string(gguf::ggml_type_name(type)).c_str(), rel, bound);
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, QuantizeErrorTest,
    ::testing::Values(ErrorBound{GgmlType::kF16, 3e-4}, ErrorBound{GgmlType::kBF16, 3e-3},
                      ErrorBound{GgmlType::kQ8_0, 6e-3}, ErrorBound{GgmlType::kQ8_1, 6e-3},
                      ErrorBound{GgmlType::kQ8_K, 8e-3}, ErrorBound{GgmlType::kQ5_0, 0.06},
                      ErrorBound{GgmlType::kQ5_1, 0.05}, ErrorBound{GgmlType::kQ4_0, 0.12},
                      ErrorBound{GgmlType::kQ4_1, 0.10}, ErrorBound{GgmlType::kQ6_K, 0.025},
                      ErrorBound{GgmlType::kQ5_K, 0.045}, ErrorBound{GgmlType::kQ4_K, 0.09},
                      ErrorBound{GgmlType::kQ3_K, 0.20}, ErrorBound{GgmlType::kQ2_K, 0.40},
                      ErrorBound{GgmlType::kIQ4_NL, 0.09}, ErrorBound{GgmlType::kIQ4_XS, 0.09}));

TEST(QuantsTest, UnsupportedTypesAndBadLengthsAreErrors) {
  float x[32] = {};
  uint8_t buf[64];
  EXPECT_EQ(QuantizeRow(GgmlType::kI32, x, buf, 32).code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(DequantizeRow(static_cast<GgmlType>(99), buf, x, 32).code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(QuantizeRow(GgmlType::kQ4_0, x, buf, 31).code(), absl::StatusCode::kInvalidArgument);
}

TEST(QuantsTest, ZeroInputQuantizesToZero) {
  for (GgmlType t : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0,
                     GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                     GgmlType::kQ8_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS}) {
    std::vector<float> x(256, 0.0f), y(256, 1.0f);
    std::vector<uint8_t> q(*gguf::ggml_row_size(t, 256));
    ASSERT_TRUE(QuantizeRow(t, x.data(), q.data(), 256).ok());
    ASSERT_TRUE(DequantizeRow(t, q.data(), y.data(), 256).ok());
    for (float v : y) ASSERT_EQ(v, 0.0f) << gguf::ggml_type_name(t);
  }
}

}  // namespace
}  // namespace llmesh::engine
