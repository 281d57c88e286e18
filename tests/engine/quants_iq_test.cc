// iq4_nl and iq4_xs: dequantization of blocks built by hand from the format
// definition (ggml-common.h), and the reference quantizer's search.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "llmesh/engine/quants.h"

namespace llmesh::engine {
namespace {

// ggml's kvalues_iq4nl, written out again rather than taken from quants.h.
constexpr int kGrid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

TEST(Iq4Test, NlBlockDequantizesThroughTheGrid) {
  block_iq4_nl b;
  b.d = 0x3800;  // 0.5
  // Element j < 16 in the low nibble of qs[j], j + 16 in the high one.
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  ASSERT_TRUE(DequantizeRow(GgmlType::kIQ4_NL, &b, y, 32).ok());
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * kGrid[j]) << j;
    EXPECT_EQ(y[j + 16], 0.5f * kGrid[15 - j]) << j;
  }
}

TEST(Iq4Test, XsSuperblockDequantizesWithSixBitScales) {
  block_iq4_xs b;
  std::memset(&b, 0, sizeof(b));
  b.d = 0x3C00;  // 1.0
  // Block ib's 6-bit scale ls: low 4 bits in nibble ib of scales_l (low
  // nibble first), high 2 bits at bits 2ib of scales_h; weight = d * (ls - 32) * grid.
  const int ls[8] = {0, 31, 32, 33, 63, 17, 48, 5};
  for (int ib = 0; ib < 8; ++ib) {
    b.scales_l[ib / 2] |= static_cast<uint8_t>((ls[ib] & 15) << (4 * (ib % 2)));
    b.scales_h |= static_cast<uint16_t>((ls[ib] >> 4) << (2 * ib));
    for (int j = 0; j < 16; ++j) b.qs[16 * ib + j] = static_cast<uint8_t>(((j + ib) & 15) | (((j + 2 * ib) & 15) << 4));
  }
  std::vector<float> y(256);
  ASSERT_TRUE(DequantizeRow(GgmlType::kIQ4_XS, &b, y.data(), 256).ok());
  for (int ib = 0; ib < 8; ++ib) {
    EXPECT_EQ(iq4_xs_scale(b, ib), ls[ib]);
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(y[32 * ib + j], float(ls[ib] - 32) * kGrid[(j + ib) & 15]) << ib << " " << j;
      EXPECT_EQ(y[32 * ib + j + 16], float(ls[ib] - 32) * kGrid[(j + 2 * ib) & 15]) << ib << " " << j;
    }
  }
}

// Values on the grid at one scale per block come back exactly: the search
// finds the scale (or its sign-flipped twin) that fits them with no error.
TEST(Iq4Test, GridValuesRoundTripExactly) {
  std::mt19937 rng(5);
  std::vector<float> x(256), y(256);
  for (int ib = 0; ib < 8; ++ib) {
    const float d = 0.25f * (ib + 1);
    for (int j = 0; j < 32; ++j) x[32 * ib + j] = d * kGrid[(j == 0) ? 0 : rng() % 16];  // -127 d present
  }
  block_iq4_nl nl[8];
  ASSERT_TRUE(QuantizeRow(GgmlType::kIQ4_NL, x.data(), nl, 256).ok());
  ASSERT_TRUE(DequantizeRow(GgmlType::kIQ4_NL, nl, y.data(), 256).ok());
  for (int i = 0; i < 256; ++i) ASSERT_EQ(y[i], x[i]) << i;
  // iq4_xs: block scales 0.25 (ib + 1) are d * (ls - 32) only for a d that
  // divides all of them; -2 / -32 = 1/16 does: ls - 32 = -4 (ib + 1).
  block_iq4_xs xs;
  ASSERT_TRUE(QuantizeRow(GgmlType::kIQ4_XS, x.data(), &xs, 256).ok());
  ASSERT_TRUE(DequantizeRow(GgmlType::kIQ4_XS, &xs, y.data(), 256).ok());
  for (int i = 0; i < 256; ++i) ASSERT_EQ(y[i], x[i]) << i;
}

// The search beats plain absmax scaling (ggml's initial guess) on Gaussian
// data: it is what makes iq4_nl better than q4_0 at the same size.
TEST(Iq4Test, ScaleSearchBeatsAbsmaxAndQ4_0) {
  const int64_t n = 256 * 64;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist;
  std::vector<float> x(n), y(n);
  for (float& v : x) v = dist(rng);
  auto rel_rmse = [&](GgmlType type) {
    std::vector<uint8_t> q(*gguf::ggml_row_size(type, n));
    EXPECT_TRUE(QuantizeRow(type, x.data(), q.data(), n).ok());
    EXPECT_TRUE(DequantizeRow(type, q.data(), y.data(), n).ok());
    double err = 0, sig = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      sig += double(x[i]) * x[i];
    }
    return std::sqrt(err / sig);
  };
  // absmax onto the grid: d = max / -127, nearest grid value.
  double err = 0, sig = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(x[32 * b + j]) > amax) amax = std::fabs(max = x[32 * b + j]);
    const float d = max / -127;
    for (int j = 0; j < 32; ++j) {
      float best = 0, best_err = INFINITY;
      for (int g : kGrid)
        if (std::fabs(d * g - x[32 * b + j]) < best_err) best_err = std::fabs((best = d * g) - x[32 * b + j]);
      err += double(best - x[32 * b + j]) * (best - x[32 * b + j]);
      sig += double(x[32 * b + j]) * x[32 * b + j];
    }
  }
  const double absmax = std::sqrt(err / sig), nl = rel_rmse(GgmlType::kIQ4_NL), xs = rel_rmse(GgmlType::kIQ4_XS),
               q4 = rel_rmse(GgmlType::kQ4_0);
  std::printf("rel rmse: iq4_nl %.5f, iq4_xs %.5f, absmax grid %.5f, q4_0 %.5f\n", nl, xs, absmax, q4);
  EXPECT_LT(nl, absmax);
  EXPECT_LT(nl, q4);
  EXPECT_LT(xs, q4);
}

TEST(Iq4Test, RowsNotWholeBlocksAreErrors) {
  std::vector<float> x(512);
  std::vector<uint8_t> buf(1024);
  const absl::Status nl = QuantizeRow(GgmlType::kIQ4_NL, x.data(), buf.data(), 48);
  EXPECT_EQ(nl.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nl.message().find("not a multiple of 32"), std::string::npos) << nl;
  const absl::Status xs = DequantizeRow(GgmlType::kIQ4_XS, buf.data(), x.data(), 288);
  EXPECT_EQ(xs.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(xs.message().find("not a multiple of 256"), std::string::npos) << xs;
}

}  // namespace
}  // namespace llmesh::engine
