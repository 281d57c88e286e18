// Malformed files, after llama.cpp's tests/test-gguf.cpp: each corruption must
// fail with its own message, and no input may crash or read out of bounds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "gguf_test_util.h"
#include "llmesh/gguf/gguf_file.h"
#include "llmesh/gguf/gguf_writer.h"

namespace llmesh::gguf {
namespace {

using testing::RawGguf;
using ::testing::HasSubstr;

constexpr uint32_t kF32 = 0;

// Expects the bytes to be rejected with INVALID_ARGUMENT naming `what`.
void ExpectError(const std::vector<uint8_t>& bytes, std::string_view what) {
  auto f = GgufFile::FromBuffer(bytes);
  ASSERT_FALSE(f.ok()) << "accepted a file that should fail with: " << what;
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(std::string(what)));
}

// A small valid file: a few kinds of metadata and two tensors, the last one
// ending exactly at the end of the file, so every strict prefix is invalid.
std::vector<uint8_t> SmallValidFile() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.block_count", 1);
  w.SetF32("eps", 1e-5f);
  const std::vector<std::string> toks = {"<s>", "a", "bc"};
  w.SetStringArray("tokenizer.ggml.tokens", toks);
  const std::vector<int32_t> types = {3, 1, 1};
  w.SetI32Array("tokenizer.ggml.token_type", types);
  EXPECT_TRUE(w.AddTensor("a", GgmlType::kQ8_0, {32, 2}, std::vector<uint8_t>(68, 7)).ok());
  EXPECT_TRUE(w.AddTensor("b", GgmlType::kF32, {8}, std::vector<uint8_t>(32, 9)).ok());
  return w.WriteToBuffer();
}

TEST(GgufMalformedTest, SmallValidFileParses) {
  auto f = GgufFile::FromBuffer(SmallValidFile());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors().size(), 2u);
}

TEST(GgufMalformedTest, Header) {
  ExpectError({}, "truncated header: file is 0 bytes");
  ExpectError({'G', 'G', 'U', 'F', 3, 0, 0}, "truncated header");
  RawGguf bad_magic;
  bad_magic.bytes = {'G', 'G', 'M', 'L'};
  bad_magic.U32(3).U64(0).U64(0);
  ExpectError(bad_magic.bytes, "bad magic");
  ExpectError(RawGguf().Header(0, 0, /*version=*/1).bytes, "unsupported GGUF version 1");
  ExpectError(RawGguf().Header(0, 0, /*version=*/0).bytes, "unsupported GGUF version 0");
  ExpectError(RawGguf().Header(0, 0, /*version=*/4).bytes, "unsupported GGUF version 4");
  ExpectError(RawGguf().Header(0, 0, /*version=*/0x03000000).bytes, "byte-swapped");
  EXPECT_TRUE(GgufFile::FromBuffer(RawGguf().Header(0, 0, 2).bytes).ok());
  EXPECT_TRUE(GgufFile::FromBuffer(RawGguf().Header(0, 0, 3).bytes).ok());
}

TEST(GgufMalformedTest, AbsurdCounts) {
  ExpectError(RawGguf().Header(0, UINT64_MAX).bytes, "kv count 18446744073709551615 is absurd");
  ExpectError(RawGguf().Header(0, 1).bytes, "kv count 1 is absurd");
  ExpectError(RawGguf().Header(UINT64_MAX, 0).bytes, "tensor count 18446744073709551615 is absurd");
  ExpectError(RawGguf().Header(int64_t{1} << 62, 0).Zeros(100).bytes, "tensor count");
}

TEST(GgufMalformedTest, Strings) {
  ExpectError(RawGguf().Header(0, 1).U64(UINT64_MAX).Zeros(8).bytes,
              "key of kv 0 length 18446744073709551615 at offset 24 runs past the end");
  ExpectError(RawGguf().Header(0, 1).U64(20).Zeros(19).bytes, "key of kv 0 length 20");
  ExpectError(RawGguf().Header(0, 1).Str("k").U32(8).U64(1000).Zeros(10).bytes,
              "string value of key 'k' length 1000");
  ExpectError(RawGguf().Header(1, 0).U64(UINT64_MAX >> 1).Zeros(40).bytes,
              "name of tensor 0 length");
}

TEST(GgufMalformedTest, TruncatedKeyValues) {
  ExpectError(RawGguf().Header(0, 2).KvU32("kkkkkkkkkk", 1).Zeros(2).bytes,
              "truncated key of kv 1 length");
  ExpectError(RawGguf().Header(0, 1).Str("k").U32(10).U32(0).bytes, "truncated value of key 'k'");
  ExpectError(RawGguf().Header(0, 1).Str("kkkkkkkkk").U32(9).U8(0).bytes,
              "truncated array type of key");
  ExpectError(RawGguf().Header(0, 1).Str("kkkkk").U32(9).U32(0).U32(0).bytes,
              "truncated array length of key 'kkkkk'");
  ExpectError(RawGguf().Header(0, 1).Str("kkkkkk").U8(9).bytes, "truncated value type of key");
}

TEST(GgufMalformedTest, ValueTypes) {
  ExpectError(RawGguf().Header(0, 1).Str("k").U32(13).U64(0).bytes,
              "key 'k': unknown value type 13 at offset 33");
  ExpectError(RawGguf().Header(0, 1).Str("k").U32(0xFFFFFFFF).U64(0).bytes,
              "unknown value type 4294967295");
  ExpectError(RawGguf().Header(0, 1).Str("arr").U32(9).U32(13).U64(0).bytes,
              "key 'arr': array element type 13 is invalid");
  // Element type must be checked before the elements are used.
  ExpectError(RawGguf().Header(0, 1).Str("arr").U32(9).U32(100).U64(1).U64(0).bytes,
              "array element type 100 is invalid");
}

TEST(GgufMalformedTest, ArrayLengths) {
  ExpectError(RawGguf().Header(0, 1).Str("arr").U32(9).U32(8).U64(UINT64_MAX).bytes,
              "key 'arr': array of 18446744073709551615 string elements needs at least 8 bytes");
  ExpectError(RawGguf().Header(0, 1).Str("arr").U32(9).U32(0).U64(9).Zeros(8).bytes,
              "array of 9 u8 elements needs at least 1 bytes per element but only 8");
  ExpectError(RawGguf().Header(0, 1).Str("arr").U32(9).U32(12).U64(2).Zeros(15).bytes,
              "array of 2 f64 elements");
  ExpectError(RawGguf().Header(0, 1).Str("arr").U32(9).U32(9).U64(3).Zeros(35).bytes,
              "array of 3 array elements needs at least 12 bytes");
  // The length fits but one string inside runs past the end.
  ExpectError(RawGguf().Header(0, 1).Str("arr").U32(9).U32(8).U64(2).Str("ok").U64(99).Zeros(9).bytes,
              "string value of key 'arr' length 99");
  // More elements than the per-file metadata budget, each individually cheap.
  RawGguf big;
  big.Header(0, 1).Str("big").U32(9).U32(0).U64(kMaxMetadataValues + 1).Zeros(kMaxMetadataValues + 1);
  ExpectError(big.bytes, "exceeds the limit of 8388608 metadata values");
}

TEST(GgufMalformedTest, NestedArrayDepth) {
  auto nested = [](int depth) {
    RawGguf r;
    r.Header(0, 1).Str("n").U32(9);
    for (int i = 1; i < depth; ++i) r.U32(9).U64(1);
    r.U32(0).U64(1).U8(42);
    return r.bytes;
  };
  auto ok = GgufFile::FromBuffer(nested(kMaxArrayDepth));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ExpectError(nested(kMaxArrayDepth + 1), "key 'n': nested array depth exceeds the limit of 8");
  // Even far deeper nesting fails at the limit, without recursing further.
  ExpectError(nested(100000), "nested array depth");
}

TEST(GgufMalformedTest, DuplicateKeys) {
  ExpectError(RawGguf().Header(0, 2).KvU32("k", 1).KvU32("k", 2).bytes,
              "duplicate key 'k' (kv 0 and 1)");
  ExpectError(RawGguf().Header(0, 3).KvU32("a", 1).KvString("b", "x").KvString("a", "y").bytes,
              "duplicate key 'a' (kv 0 and 2)");
}

TEST(GgufMalformedTest, Alignment) {
  ExpectError(RawGguf().Header(0, 1).KvU32("general.alignment", 0).bytes,
              "general.alignment 0 is not a power of two in [1, 65536]");
  ExpectError(RawGguf().Header(0, 1).KvU32("general.alignment", 48).bytes,
              "general.alignment 48 is not a power of two in [1, 65536]");
  // A power of two, but re-encoding would pad the header to a gigabyte
  // (found by gguf_fuzz).
  ExpectError(RawGguf().Header(0, 1).KvU32("general.alignment", 1u << 30).bytes,
              "general.alignment 1073741824 is not a power of two in [1, 65536]");
  ExpectError(RawGguf().Header(0, 1).Str("general.alignment").U32(10).U64(32).bytes,
              "general.alignment must be a u32, got u64");
  ExpectError(RawGguf().Header(0, 1).KvString("general.alignment", "32").bytes,
              "general.alignment must be a u32, got string");
}

// One tensor info after a header with no metadata; data section at 32 * k.
std::vector<uint8_t> OneTensor(std::vector<int64_t> dims, uint32_t type, uint64_t offset,
                               size_t data_bytes, std::string_view name = "w") {
  RawGguf r;
  r.Header(1, 0).TensorInfo(name, std::move(dims), type, offset).PadTo(32).Zeros(data_bytes);
  return r.bytes;
}

TEST(GgufMalformedTest, TensorShapes) {
  ASSERT_TRUE(GgufFile::FromBuffer(OneTensor({4, 2}, kF32, 0, 32)).ok());
  ExpectError(OneTensor({}, kF32, 0, 32), "tensor 'w': n_dims 0 is out of range 1..4");
  ExpectError(OneTensor({1, 1, 1, 1, 1}, kF32, 0, 32), "tensor 'w': n_dims 5 is out of range");
  ExpectError(OneTensor({4, 0}, kF32, 0, 32), "tensor 'w': dimension 1 is 0");
  ExpectError(OneTensor({-4}, kF32, 0, 32), "tensor 'w': dimension 0 is -4");
  ExpectError(OneTensor({INT64_MIN, 1}, kF32, 0, 32), "dimension 0 is -9223372036854775808");
  ExpectError(OneTensor({int64_t{1} << 32, int64_t{1} << 32}, kF32, 0, 32),
              "tensor 'w': element count of dims [4294967296, 4294967296] overflows int64");
  ExpectError(OneTensor({3, 3, 3, INT64_MAX / 20}, kF32, 0, 32), "overflows int64");
  // Element count fits in int64 but the byte size does not fit in 64 bits.
  ExpectError(OneTensor({int64_t{1} << 62}, kF32, 0, 32), "byte size of dims");
  ExpectError(OneTensor({33, 2}, 2 /* q4_0 */, 0, 64),
              "tensor 'w': ne[0] = 33 is not a multiple of the block size 32 of type q4_0");
  ExpectError(OneTensor({128}, 12 /* q4_K */, 0, 256), "block size 256 of type q4_K");
  ExpectError(OneTensor({32}, 4, 0, 64), "tensor 'w': unknown tensor type 4");
  ExpectError(OneTensor({32}, 0xFFFFFFFF, 0, 64), "unknown tensor type 4294967295");
  ExpectError(OneTensor({1}, kF32, 0, 32, std::string(64, 'x')),
              "tensor 0 name is 64 bytes long, the limit is 63");
}

TEST(GgufMalformedTest, TensorOffsetsAndData) {
  ExpectError(OneTensor({4}, kF32, 3, 64), "tensor 'w': offset 3 is not a multiple of the alignment 32");
  ExpectError(OneTensor({8}, kF32, 0, 31), "tensor 'w': data [0, 32) runs past the end of the file");
  ExpectError(OneTensor({8}, kF32, 32, 32), "data [32, 64) runs past the end");
  ExpectError(OneTensor({8}, kF32, uint64_t{1} << 63, 32), "runs past the end of the file");
  ExpectError(OneTensor({8}, kF32, 0xFFFFFFFFFFFFFFE0ull, 32), "runs past the end of the file");
  // A tensor whose data section start lies beyond the end of the file.
  RawGguf r;
  r.Header(1, 0).TensorInfo("w", {8}, kF32, 0);
  ExpectError(r.bytes, "data section holds 0 bytes");
  // The info is cut short.
  const std::string name(16, 'w');
  ExpectError(RawGguf().Header(1, 0).Str(name).U32(2).I64(4).Zeros(4).bytes,
              "truncated dims of tensor 'wwww");
  ExpectError(RawGguf().Header(1, 0).Str(name).U32(1).I64(8).Zeros(2).bytes,
              "truncated type of tensor 'wwww");
  ExpectError(RawGguf().Header(1, 0).Str(name).U32(1).I64(8).U32(0).U32(0).bytes,
              "truncated offset of tensor 'wwww");
}

TEST(GgufMalformedTest, DuplicateAndOverlappingTensors) {
  RawGguf dup;
  dup.Header(2, 0).TensorInfo("w", {8}, kF32, 0).TensorInfo("w", {8}, kF32, 32).PadTo(32).Zeros(64);
  ExpectError(dup.bytes, "duplicate tensor name 'w' (tensors 0 and 1)");
  RawGguf overlap;
  overlap.Header(2, 0).TensorInfo("a", {16}, kF32, 0).TensorInfo("b", {8}, kF32, 32).PadTo(32).Zeros(96);
  ExpectError(overlap.bytes, "tensors 'a' [0, 64) and 'b' [32, 64) overlap");
  RawGguf same;
  same.Header(2, 0).TensorInfo("a", {8}, kF32, 32).TensorInfo("b", {8}, kF32, 32).PadTo(32).Zeros(64);
  ExpectError(same.bytes, "overlap");
  // Out-of-order but disjoint tensors are fine.
  RawGguf reordered;
  reordered.Header(2, 0).TensorInfo("a", {8}, kF32, 32).TensorInfo("b", {8}, kF32, 0).PadTo(32).Zeros(64);
  auto f = GgufFile::FromBuffer(reordered.bytes);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->FindTensor("a")->data - (*f)->FindTensor("b")->data, 32);
}

TEST(GgufMalformedTest, EveryTruncationFails) {
  const std::vector<uint8_t> full = SmallValidFile();
  ASSERT_TRUE(GgufFile::FromBuffer(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    auto f = GgufFile::FromBuffer(std::span<const uint8_t>(full).first(n));
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(GgufMalformedTest, TruncatedMetadataOnlyFileFailsUntilItsLastValue) {
  // Vocabulary files end right after their metadata, without padding.
  GgufWriter w;
  w.SetString("general.architecture", "x");
  const std::vector<std::string> toks = {"a", "b"};
  w.SetStringArray("tokenizer.ggml.tokens", toks);
  std::vector<uint8_t> full = w.WriteToBuffer();
  while (!full.empty() && full.back() == 0) full.pop_back();  // drop the padding
  ASSERT_TRUE(GgufFile::FromBuffer(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(GgufFile::FromBuffer(std::span<const uint8_t>(full).first(n)).ok()) << n;
  }
}

// Flips random bytes: the result must parse or fail, never crash, and
// everything a successful parse exposes must be readable.
void FlipBytes(const std::vector<uint8_t>& original, size_t flip_range, int seeds) {
  int parsed = 0;
  for (int seed = 0; seed < seeds; ++seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> bytes = original;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i) {
      const size_t at = rng() % std::min(flip_range, bytes.size());
      // Half the time a random byte, otherwise a value likely to hit a limit.
      static constexpr uint8_t kInteresting[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x09, 0x0D};
      bytes[at] = rng() % 2 ? static_cast<uint8_t>(rng()) : kInteresting[rng() % 8];
    }
    auto f = GgufFile::FromBuffer(bytes);
    if (f.ok()) {
      ++parsed;
      testing::TouchAll(**f);
    } else {
      EXPECT_FALSE(f.status().message().empty());
    }
  }
  ::testing::Test::RecordProperty("parsed", parsed);
}

TEST(GgufMalformedTest, RandomByteFlipsSmallFile) {
  const std::vector<uint8_t> full = SmallValidFile();
  FlipBytes(full, full.size(), 5000);
}

TEST(GgufMalformedTest, RandomByteFlipsStories260KHeader) {
  std::ifstream in(std::string(LLMESH_SHARED_DIR) + "/models/stories260K.gguf", std::ios::binary);
  const std::vector<uint8_t> full((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  ASSERT_GT(full.size(), 14176u);
  FlipBytes(full, 14176, 300);  // metadata and tensor infos only
}

}  // namespace
}  // namespace llmesh::gguf
