// MatMul: activation quantization, work split and cache tiling; the arithmetic
// lives in the per-ISA kernels (dot_*.cc) chosen here from CPUID.
#include "llmesh/engine/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <span>
#include <utility>

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

// Prefill tiling: a chunk of activation rows stays in L2 while each thread
// streams its weight rows past it a few rows at a time.
constexpr int kTokenChunk = 64;
constexpr int kRowTile = 16;
// Activations below this many floats quantize on the calling thread: a
// parallel region costs more than the work.
constexpr int64_t kParallelQuantize = 16 * 1024;

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

namespace {

// Quantizes the n_tok activation rows once into the kind the weight type's
// kernels want (F32 kernels read x directly); returns rows and stride.
std::pair<const uint8_t*, size_t> QuantizeActs(ThreadPool& pool, SimdLevel level, ActKind kind, const float* x,
                                               int64_t n, int64_t n_tok) {
  if (kind == ActKind::kF32) return {reinterpret_cast<const uint8_t*>(x), n * sizeof(float)};
  const size_t x_stride = internal::ActRowBytes(kind, n);
  uint8_t* buf = internal::ThreadScratch<internal::kScratchActs>(x_stride * n_tok);
  const internal::QuantizeActFn quantize_row = level >= SimdLevel::kAvx512 ? &internal::QuantizeActAvx512
                                               : level >= SimdLevel::kAvx2 ? &internal::QuantizeActAvx2
                                                                           : &internal::QuantizeActScalar;
  auto quantize = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quantize_row(kind, x + t * n, buf + t * x_stride, n);
  };
  if (n_tok * n < kParallelQuantize || pool.n_threads() == 1) {
    quantize(0, n_tok);
  } else {
    pool.ParallelFor(n_tok, quantize);
  }
  return {buf, x_stride};
}

// All matrices packed, of one type and input width: one parallel region over
// the groups of all of them, which share each thread's interleaved
// activations. Threads take chunks of groups from a shared counter instead of
// fixed halves: with fixed halves one thread regularly finished a few percent
// later and the other waited for it at every matmul.
void PackedMatMul(ThreadPool& pool, const internal::PackedKernels& kernels, std::span<const WeightView* const> ws,
                  const uint8_t* xq, size_t x_stride, int64_t n_tok, std::span<float* const> ys) {
  const int64_t n = ws[0]->n_in;
  int64_t total = 0;
  for (const WeightView* w : ws) total += w->n_out / internal::kPackRows;
  // About 8 chunks per thread: enough to even out, few enough that the
  // counter's cache line does not bounce per few microseconds of work. A
  // multiple of 4 groups, the decode kernel's step.
  const int64_t per_chunk = (total + 8 * pool.n_threads() - 1) / (8 * pool.n_threads());
  const int64_t chunk = std::max<int64_t>(n_tok == 1 ? 16 : 8, (per_chunk + 3) / 4 * 4);
  const int64_t n_chunks = (total + chunk - 1) / chunk;
  const int64_t n_tok_chunks = (n_tok + kTokenChunk - 1) / kTokenChunk;
  std::atomic<int64_t> next{0};
  pool.Run([&](int, int) {
    internal::PackedActs acts;
    int64_t acts_for = -1;  // the token chunk `acts` holds
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n_tok_chunks * n_chunks;) {
      const int64_t tc = i / n_chunks, t0 = tc * kTokenChunk;
      if (tc != acts_for) {  // the counter only grows, so once per token chunk
        const int nt = static_cast<int>(std::min<int64_t>(kTokenChunk, n_tok - t0));
        acts = kernels.interleave(n, xq + t0 * x_stride, x_stride, nt);
        acts_for = tc;
      }
      const int64_t lo = i % n_chunks * chunk, hi = std::min(total, lo + chunk);
      int64_t base = 0;
      for (size_t m = 0; m < ws.size(); ++m) {
        const int64_t groups = ws[m]->n_out / internal::kPackRows;
        const int64_t g0 = std::max(lo, base) - base, g1 = std::min(hi, base + groups) - base;
        if (g0 < g1) {
          const int64_t ldy = ws[m]->n_out;
          kernels.groups(n, {ws[m]->packed, g0, g1, ys[m] + t0 * ldy + g0 * internal::kPackRows, ldy}, acts);
        }
        base += groups;
      }
    }
  });
}

}  // namespace

void MatMul(ThreadPool& pool, const WeightView& w, const float* x, int64_t n_tok, float* y) {
  const WeightView* ws[1] = {&w};
  float* ys[1] = {y};
  MatMulMany(pool, ws, x, n_tok, ys);
}

namespace {

// Matrices that can share one packed region: same type and input width.
bool SharePackedRegion(const WeightView& a, const WeightView& b) {
  return a.packed != nullptr && b.packed != nullptr && a.type == b.type && a.n_in == b.n_in;
}

void MatMulRun(ThreadPool& pool, std::span<const WeightView* const> ws, const float* x, int64_t n_tok,
               std::span<float* const> ys) {
  const SimdLevel level = ActiveSimdLevel();
  const WeightView& w0 = *ws[0];
  bool packed = level >= SimdLevel::kAvx512Vnni;
  for (const WeightView* w : ws) {
    packed = packed && w->packed != nullptr && w->type == w0.type && w->n_in == w0.n_in;
  }
  const internal::PackedKernels kernels = packed ? internal::Avx512VnniPacked(w0.type) : internal::PackedKernels{};
  if (kernels.groups) {
    auto [xq, x_stride] = QuantizeActs(pool, level, internal::ActKindFor(w0.type), x, w0.n_in, n_tok);
    PackedMatMul(pool, kernels, ws, xq, x_stride, n_tok, ys);
    return;
  }
  for (size_t i = 0; i < ws.size(); ++i) {
    const WeightView& w = *ws[i];
    float* y = ys[i];
    if (w.n_out <= 0 || w.n_in <= 0) continue;
    const TileFn tile = SelectTile(level, w.type);
    if (!tile) std::abort();  // the loader only admits types with a kernel
    const int64_t n = w.n_in, n_out = w.n_out;
    auto [xq, x_stride] = QuantizeActs(pool, level, internal::ActKindFor(w.type), x, n, n_tok);

    // Split output rows over threads in contiguous, tile-aligned ranges.
    const auto* wbytes = static_cast<const uint8_t*>(w.data);
    pool.Run([&](int ith, int nth) {
      const int64_t n_tiles = (n_out + kRowTile - 1) / kRowTile;
      const int64_t r0 = std::min(n_out, n_tiles * ith / nth * kRowTile);
      const int64_t r1 = std::min(n_out, n_tiles * (ith + 1) / nth * kRowTile);
      if (r0 >= r1) return;
      if (n_tok == 1) {
        tile(n, wbytes + r0 * w.row_bytes, w.row_bytes, static_cast<int>(r1 - r0), xq, x_stride, 1, y + r0, n_out);
        return;
      }
      for (int64_t t0 = 0; t0 < n_tok; t0 += kTokenChunk) {
        const int nt = static_cast<int>(std::min<int64_t>(kTokenChunk, n_tok - t0));
        for (int64_t r = r0; r < r1; r += kRowTile) {
          const int nr = static_cast<int>(std::min<int64_t>(kRowTile, r1 - r));
          tile(n, wbytes + r * w.row_bytes, w.row_bytes, nr, xq + t0 * x_stride, x_stride, nt, y + t0 * n_out + r,
               n_out);
        }
      }
    });
  }
}

}  // namespace

void MatMulMany(ThreadPool& pool, std::span<const WeightView* const> ws, const float* x, int64_t n_tok,
                std::span<float* const> ys) {
  if (n_tok <= 0 || ws.empty()) return;
  // Runs of matrices that share a packed region, each one region: in a
  // Q4_K_M file some layers' V is Q6_K while Q and K are Q4_K.
  for (size_t i = 0, j; i < ws.size(); i = j) {
    for (j = i + 1; j < ws.size() && SharePackedRegion(*ws[i], *ws[j]);) ++j;
    MatMulRun(pool, ws.subspan(i, j - i), x, n_tok, ys.subspan(i, j - i));
  }
}

}  // namespace llmesh::engine
