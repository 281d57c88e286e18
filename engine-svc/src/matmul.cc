// MatMul: activation quantization, work split and cache tiling; the arithmetic
// lives in the per-ISA kernels (dot_*.cc) chosen here from CPUID.
#include "llmesh/engine/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>

#include "kernels.h"
#include "packed_layout.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace llmesh::engine {
namespace {

using internal::ActKind;
using internal::TileFn;

struct CpuFeatures {
  bool avx2 = false;        // with FMA and F16C
  bool avx512 = false;      // F, BW, VL
  bool avx512vnni = false;
  bool avx512bf16 = false;
};

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  unsigned xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool os_avx = (xcr0_lo & 0x6) == 0x6;       // XMM and YMM state
  const bool os_avx512 = (xcr0_lo & 0xE6) == 0xE6;  // + opmask, ZMM state
  if (!os_avx || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = (b & (1u << 5)) && fma && f16c;
  f.avx512 = f.avx2 && os_avx512 && (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31));
  f.avx512vnni = f.avx512 && (c & (1u << 11));
  if (f.avx512 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = a & (1u << 5);
#endif
  return f;
}

const CpuFeatures& Features() {
  static const CpuFeatures f = Detect();
  return f;
}

SimdLevel DetectLevel() {
  const CpuFeatures& f = Features();
  if (f.avx512vnni) return SimdLevel::kAvx512Vnni;
  if (f.avx512) return SimdLevel::kAvx512;
  if (f.avx2) return SimdLevel::kAvx2;
  return SimdLevel::kScalar;
}

std::atomic<SimdLevel>& ActiveLevel() {
  static std::atomic<SimdLevel> level{DetectLevel()};
  return level;
}

TileFn SelectTile(SimdLevel level, GgmlType type) {
  TileFn fn = nullptr;
  if (level >= SimdLevel::kAvx512Vnni) fn = internal::Avx512VnniTile(type);
  if (!fn && level >= SimdLevel::kAvx512) fn = internal::Avx512Tile(type);
  if (!fn && level >= SimdLevel::kAvx2) fn = internal::Avx2Tile(type);
  if (!fn) fn = internal::ScalarTile(type);
  return fn;
}

// The calling thread's activation buffer, reused across calls (no per-token
// allocation); 64-byte aligned for full-width loads.
uint8_t* ActBuffer(size_t bytes) {
  struct Buf {
    uint8_t* p = nullptr;
    size_t cap = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf buf;
  if (bytes > buf.cap) {
    std::free(buf.p);
    buf.cap = (bytes + 4095) & ~size_t{4095};
    buf.p = static_cast<uint8_t*>(std::aligned_alloc(64, buf.cap));
  }
  return buf.p;
}

// Prefill tiling: a chunk of activation rows stays in L2 while each thread
// streams its weight rows past it a few rows at a time.
constexpr int kTokenChunk = 64;
constexpr int kRowTile = 16;
static_assert(kRowTile % internal::kPackRows == 0, "packed groups must not straddle threads");

}  // namespace

namespace internal {
bool CpuHasAvx512Bf16() { return Features().avx512bf16; }
}  // namespace internal

SimdLevel DetectedSimdLevel() {
  static const SimdLevel level = DetectLevel();
  return level;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return "scalar";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx512Vnni: return "avx512vnni";
  }
  return "unknown";
}

void SetSimdLevel(SimdLevel level) {
  if (level > DetectedSimdLevel()) level = DetectedSimdLevel();
  ActiveLevel().store(level);
}

SimdLevel ActiveSimdLevel() { return ActiveLevel().load(std::memory_order_relaxed); }

void MatMul(ThreadPool& pool, const WeightView& w, const float* x, int64_t n_tok, float* y) {
  if (n_tok <= 0 || w.n_out <= 0 || w.n_in <= 0) return;
  const SimdLevel level = ActiveSimdLevel();
  const internal::PackedTileFn packed_tile =
      w.packed != nullptr && level >= SimdLevel::kAvx512Vnni ? internal::Avx512VnniPackedTile(w.type) : nullptr;
  const TileFn tile = packed_tile ? nullptr : SelectTile(level, w.type);
  if (!tile && !packed_tile) std::abort();  // the loader only admits types with a kernel
  const int64_t n = w.n_in, n_out = w.n_out;
  const ActKind kind = internal::ActKindFor(w.type);

  // 1. Quantize the activation rows once (F32 kernels read x directly).
  const uint8_t* xq;
  size_t x_stride;
  if (kind == ActKind::kF32) {
    xq = reinterpret_cast<const uint8_t*>(x);
    x_stride = n * sizeof(float);
  } else {
    x_stride = internal::ActRowBytes(kind, n);
    uint8_t* buf = ActBuffer(x_stride * n_tok);
    const internal::QuantizeActFn quantize_row =
        level >= SimdLevel::kAvx512 ? &internal::QuantizeActAvx512
        : level >= SimdLevel::kAvx2 ? &internal::QuantizeActAvx2
                                    : &internal::QuantizeActScalar;
    auto quantize = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) quantize_row(kind, x + t * n, buf + t * x_stride, n);
    };
    if (n_tok == 1 || pool.n_threads() == 1) {
      quantize(0, n_tok);
    } else {
      pool.ParallelFor(n_tok, quantize);
    }
    xq = buf;
  }

  // 2. Split output rows over threads in contiguous, tile-aligned ranges.
  const auto* wbytes = static_cast<const uint8_t*>(w.data);
  pool.Run([&](int ith, int nth) {
    const int64_t n_tiles = (n_out + kRowTile - 1) / kRowTile;
    const int64_t r0 = std::min(n_out, n_tiles * ith / nth * kRowTile);
    const int64_t r1 = std::min(n_out, n_tiles * (ith + 1) / nth * kRowTile);
    if (r0 >= r1) return;
    if (packed_tile) {  // r0, r1 are multiples of 16 = kPackRows
      for (int64_t t0 = 0; t0 < n_tok; t0 += kTokenChunk) {
        const int nt = static_cast<int>(std::min<int64_t>(kTokenChunk, n_tok - t0));
        packed_tile(n, w.packed, r0 / internal::kPackRows, r1 / internal::kPackRows, xq + t0 * x_stride, x_stride,
                    nt, y + t0 * n_out, n_out);
      }
      return;
    }
    if (n_tok == 1) {
      tile(n, wbytes + r0 * w.row_bytes, w.row_bytes, static_cast<int>(r1 - r0), xq, x_stride, 1,
           y + r0, n_out);
      return;
    }
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTokenChunk) {
      const int nt = static_cast<int>(std::min<int64_t>(kTokenChunk, n_tok - t0));
      for (int64_t r = r0; r < r1; r += kRowTile) {
        const int nr = static_cast<int>(std::min<int64_t>(kRowTile, r1 - r));
        tile(n, wbytes + r * w.row_bytes, w.row_bytes, nr, xq + t0 * x_stride, x_stride, nt,
             y + t0 * n_out + r, n_out);
      }
    }
  });
}

}  // namespace llmesh::engine
