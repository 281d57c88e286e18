// GGUF parsing: header, metadata, tensor infos, data section. Layout and the
// list of checks follow llama.cpp's ggml/src/gguf.cpp and tests/test-gguf.cpp.
#include "llmesh/gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gguf_reader.h"

namespace llmesh::gguf {
namespace {

using internal::ByteReader;

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr size_t kHeaderBytes = 4 + 4 + 8 + 8;
// Smallest encodings, used to reject counts the rest of the file cannot hold
// before anything is allocated for them.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                // empty key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, 1 dim, type, offset

bool IsKnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kFloat64); }

// Bytes one element of type t occupies at least (strings and arrays: their
// length prefixes).
uint64_t MinValueBytes(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    case ValueType::kString: return 8;
    case ValueType::kArray: return 4 + 8;
  }
  return 1;
}

absl::Status Truncated(std::string_view what, const ByteReader& r) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "truncated %s at offset %d: file ends %d bytes later", what, r.offset(), r.remaining()));
}

// Reads a length-prefixed string, telling a short prefix (truncation) apart
// from a length that points past the end of the file.
absl::Status ReadString(ByteReader& r, std::string_view what, std::string_view* out) {
  if (r.remaining() < sizeof(uint64_t)) return Truncated(absl::StrFormat("%s length", what), r);
  if (!r.ReadString(out)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s length %d at offset %d runs past the end of the file (%d bytes left)", what,
        r.PeekU64(), r.offset(), r.remaining() - sizeof(uint64_t)));
  }
  return absl::OkStatus();
}

class MetadataParser {
 public:
  explicit MetadataParser(ByteReader& r) : r_(r) {}

  absl::Status ParseValue(std::string_view key, uint32_t type, int depth, Value* out) {
    if (!IsKnownValueType(type)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "key '%s': unknown value type %d at offset %d", key, type, r_.offset() - 4));
    }
    out->type = static_cast<ValueType>(type);
    switch (out->type) {
      case ValueType::kUint8: return ReadScalar<uint8_t, uint64_t>(key, out);
      case ValueType::kUint16: return ReadScalar<uint16_t, uint64_t>(key, out);
      case ValueType::kUint32: return ReadScalar<uint32_t, uint64_t>(key, out);
      case ValueType::kUint64: return ReadScalar<uint64_t, uint64_t>(key, out);
      case ValueType::kInt8: return ReadScalar<int8_t, int64_t>(key, out);
      case ValueType::kInt16: return ReadScalar<int16_t, int64_t>(key, out);
      case ValueType::kInt32: return ReadScalar<int32_t, int64_t>(key, out);
      case ValueType::kInt64: return ReadScalar<int64_t, int64_t>(key, out);
      case ValueType::kFloat32: return ReadScalar<float, double>(key, out);
      case ValueType::kFloat64: return ReadScalar<double, double>(key, out);
      case ValueType::kBool: {
        uint8_t b = 0;
        if (!r_.Read(&b)) return Truncated(absl::StrFormat("value of key '%s'", key), r_);
        out->v = b != 0;
        return absl::OkStatus();
      }
      case ValueType::kString: {
        std::string_view s;
        if (auto st = ReadString(r_, absl::StrFormat("string value of key '%s'", key), &s); !st.ok()) {
          return st;
        }
        out->v = s;
        return absl::OkStatus();
      }
      case ValueType::kArray: return ParseArray(key, depth, out);
    }
    return absl::InternalError("unreachable");
  }

 private:
  template <typename Wire, typename Held>
  absl::Status ReadScalar(std::string_view key, Value* out) {
    Wire w{};
    if (!r_.Read(&w)) return Truncated(absl::StrFormat("value of key '%s'", key), r_);
    out->v = static_cast<Held>(w);
    return absl::OkStatus();
  }

  // An array becomes a view of its encoded elements in the mapping; they are
  // only checked here, never copied, so a huge array costs no memory.
  absl::Status ParseArray(std::string_view key, int depth, Value* out) {
    ValueType et{};
    uint64_t n = 0;
    if (auto st = ReadArrayHeader(key, depth, &et, &n); !st.ok()) return st;
    const size_t begin = r_.offset();
    if (auto st = CheckElements(key, et, n, depth); !st.ok()) return st;
    out->array_type = et;
    out->v = Array::View(et, n, {r_.data() + begin, r_.offset() - begin});
    return absl::OkStatus();
  }

  absl::Status ReadArrayHeader(std::string_view key, int depth, ValueType* et, uint64_t* n) {
    uint32_t elem_type = 0;
    if (!r_.Read(&elem_type)) return Truncated(absl::StrFormat("array type of key '%s'", key), r_);
    if (!IsKnownValueType(elem_type)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "key '%s': array element type %d is invalid", key, elem_type));
    }
    *et = static_cast<ValueType>(elem_type);
    if (*et == ValueType::kArray && depth + 1 >= kMaxArrayDepth) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "key '%s': nested array depth exceeds the limit of %d", key, kMaxArrayDepth));
    }
    if (!r_.Read(n)) return Truncated(absl::StrFormat("array length of key '%s'", key), r_);
    const uint64_t min_bytes = MinValueBytes(*et);
    if (*n > r_.remaining() / min_bytes) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "key '%s': array of %d %s elements needs at least %d bytes per element but only %d "
          "bytes are left in the file",
          key, *n, value_type_name(*et), min_bytes, r_.remaining()));
    }
    if (*n > kMaxMetadataValues - values_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "key '%s': array of %d elements exceeds the limit of %d metadata values per file", key,
          *n, kMaxMetadataValues));
    }
    values_ += *n;
    return absl::OkStatus();
  }

  // Checks the n elements of type et at the cursor and moves past them.
  absl::Status CheckElements(std::string_view key, ValueType et, uint64_t n, int depth) {
    switch (et) {
      case ValueType::kString:
        for (uint64_t i = 0; i < n; ++i) {
          std::string_view s;
          if (auto st = ReadString(r_, absl::StrFormat("string value of key '%s'", key), &s);
              !st.ok()) {
            return st;
          }
        }
        return absl::OkStatus();
      case ValueType::kArray:
        for (uint64_t i = 0; i < n; ++i) {
          ValueType inner{};
          uint64_t m = 0;
          if (auto st = ReadArrayHeader(key, depth + 1, &inner, &m); !st.ok()) return st;
          if (auto st = CheckElements(key, inner, m, depth + 1); !st.ok()) return st;
        }
        return absl::OkStatus();
      default:
        // Fixed-size numbers and bools: ReadArrayHeader checked they fit.
        r_.Skip(static_cast<size_t>(n * MinValueBytes(et)));
        return absl::OkStatus();
    }
  }

  ByteReader& r_;
  uint64_t values_ = 0;
};

std::string DimsString(const int64_t* ne, int n_dims) {
  return absl::StrCat("[", absl::StrJoin(ne, ne + n_dims, ", "), "]");
}

}  // namespace

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = absl::StrCat("cannot open ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {  // mmap rejects length 0; an empty file fails as a truncated header
    void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot mmap ", path, " (", f->size_, " bytes): ", std::strerror(err)));
    }
    f->mapping_ = m;
    f->base_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);  // the mapping keeps the file alive
  if (absl::Status s = f->Parse(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return f;
}

void GgufFile::DropPages(const void* p, size_t n) const {
  if (mapping_ == nullptr) return;
  // Whole pages inside both the range and the mapping only.
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = std::max(reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(base_));
  const uintptr_t hi = std::min(reinterpret_cast<uintptr_t>(p) + n, reinterpret_cast<uintptr_t>(base_) + size_);
  const uintptr_t a = (lo + page - 1) & ~(page - 1), b = hi & ~(page - 1);
  // MADV_DONTNEED on a private read-only file mapping discards clean pages.
  if (a < b) ::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBuffer(std::span<const uint8_t> bytes) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = "<buffer>";
  f->owned_.assign(bytes.begin(), bytes.end());
  f->base_ = f->owned_.data();
  f->size_ = f->owned_.size();
  if (absl::Status s = f->Parse(); !s.ok()) return s;
  return f;
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

absl::Status GgufFile::Parse() {
  ByteReader r(base_, size_);

  // Header: magic, version, tensor count, kv count.
  if (r.remaining() < kHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "truncated header: file is %d bytes, a GGUF header needs %d", size_, kHeaderBytes));
  }
  uint32_t magic = 0;
  r.Read(&magic);
  if (magic != kMagic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad magic 0x%08x: not a GGUF file (expected \"GGUF\")", magic));
  }
  r.Read(&version_);
  if (version_ == 1) {
    return absl::InvalidArgumentError(
        "unsupported GGUF version 1: v1 files are obsolete, re-convert the model (supported: 2, 3)");
  }
  if (version_ != 2 && version_ != 3) {
    const bool swapped = (version_ & 0xFFFF) == 0 && (version_ >> 24) <= 3;
    return absl::InvalidArgumentError(absl::StrFormat(
        "unsupported GGUF version %d (supported: 2, 3)%s", version_,
        swapped ? "; it looks byte-swapped, big-endian files are not supported" : ""));
  }
  uint64_t n_tensors = 0, n_kv = 0;
  r.Read(&n_tensors);
  r.Read(&n_kv);
  if (n_kv > r.remaining() / kMinKvBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kv count %d is absurd for a file of %d bytes (each needs at least %d)", n_kv, size_,
        kMinKvBytes));
  }
  if (n_tensors > r.remaining() / kMinTensorInfoBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor count %d is absurd for a file of %d bytes (each info needs at least %d)",
        n_tensors, size_, kMinTensorInfoBytes));
  }

  // Metadata.
  MetadataParser values(r);
  kv_.resize(static_cast<size_t>(n_kv));
  kv_index_.reserve(static_cast<size_t>(n_kv));
  for (size_t i = 0; i < kv_.size(); ++i) {
    KeyValue& kv = kv_[i];
    if (auto st = ReadString(r, absl::StrFormat("key of kv %d", i), &kv.key); !st.ok()) return st;
    auto [it, inserted] = kv_index_.emplace(kv.key, i);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrFormat("duplicate key '%s' (kv %d and %d)", kv.key, it->second, i));
    }
    uint32_t type = 0;
    if (!r.Read(&type)) return Truncated(absl::StrFormat("value type of key '%s'", kv.key), r);
    if (auto st = values.ParseValue(kv.key, type, 0, &kv.value); !st.ok()) return st;
  }

  if (const Value* a = Find(kAlignmentKey)) {
    if (a->type != ValueType::kUint32) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s must be a u32, got %s", kAlignmentKey, value_type_name(a->type)));
    }
    const uint64_t align = std::get<uint64_t>(a->v);
    if (auto st = ValidateAlignment(align); !st.ok()) return st;
    alignment_ = static_cast<size_t>(align);
  } else {
    alignment_ = kDefaultAlignment;
  }

  // Tensor infos.
  tensors_.resize(static_cast<size_t>(n_tensors));
  tensor_index_.reserve(static_cast<size_t>(n_tensors));
  for (size_t i = 0; i < tensors_.size(); ++i) {
    TensorInfo& t = tensors_[i];
    if (auto st = ReadString(r, absl::StrFormat("name of tensor %d", i), &t.name); !st.ok()) {
      return st;
    }
    if (t.name.size() > kMaxTensorNameLength) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor %d name is %d bytes long, the limit is %d", i, t.name.size(),
          kMaxTensorNameLength));
    }
    auto [it, inserted] = tensor_index_.emplace(t.name, i);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "duplicate tensor name '%s' (tensors %d and %d)", t.name, it->second, i));
    }
    uint32_t n_dims = 0;
    if (!r.Read(&n_dims)) return Truncated(absl::StrFormat("n_dims of tensor '%s'", t.name), r);
    if (n_dims == 0 || n_dims > kMaxDims) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s': n_dims %d is out of range 1..%d", t.name, n_dims, kMaxDims));
    }
    t.n_dims = static_cast<int>(n_dims);
    std::fill(std::begin(t.ne), std::end(t.ne), 1);
    for (int d = 0; d < t.n_dims; ++d) {
      if (!r.Read(&t.ne[d])) return Truncated(absl::StrFormat("dims of tensor '%s'", t.name), r);
      if (t.ne[d] <= 0) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "tensor '%s': dimension %d is %d, dimensions must be positive", t.name, d, t.ne[d]));
      }
    }
    int64_t n_elements = 1;
    for (int d = 0; d < t.n_dims; ++d) {
      if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "tensor '%s': element count of dims %s overflows int64", t.name,
            DimsString(t.ne, t.n_dims)));
      }
    }
    uint32_t type = 0;
    if (!r.Read(&type)) return Truncated(absl::StrFormat("type of tensor '%s'", t.name), r);
    const std::optional<GgmlTypeTraits> traits = ggml_type_traits(type);
    if (!traits) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tensor '%s': unknown tensor type %d", t.name, type));
    }
    t.type = static_cast<GgmlType>(type);
    if (t.ne[0] % traits->block_size != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s': ne[0] = %d is not a multiple of the block size %d of type %s", t.name,
          t.ne[0], traits->block_size, traits->name));
    }
    const std::optional<size_t> row = ggml_row_size(t.type, t.ne[0]);
    if (!row || __builtin_mul_overflow(*row, static_cast<uint64_t>(t.n_rows()), &t.nbytes)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s': byte size of dims %s (type %s) overflows", t.name,
          DimsString(t.ne, t.n_dims), traits->name));
    }
    if (!r.Read(&t.offset)) return Truncated(absl::StrFormat("offset of tensor '%s'", t.name), r);
    if (t.offset % alignment_ != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s': offset %d is not a multiple of the alignment %d", t.name, t.offset,
          alignment_));
    }
  }

  // Data section: starts at the next multiple of the alignment. A file with
  // no tensors may end before that padding.
  const size_t data_start = (r.offset() + alignment_ - 1) / alignment_ * alignment_;
  const size_t data_size = data_start < size_ ? size_ - data_start : 0;
  for (TensorInfo& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s': data [%d, %d) runs past the end of the file (data section holds %d "
          "bytes from offset %d)",
          t.name, t.offset, t.offset + t.nbytes, data_size, data_start));
    }
    t.data = base_ + data_start + t.offset;
  }

  std::vector<size_t> by_offset(tensors_.size());
  std::iota(by_offset.begin(), by_offset.end(), size_t{0});
  std::sort(by_offset.begin(), by_offset.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& a = tensors_[by_offset[i - 1]];
    const TensorInfo& b = tensors_[by_offset[i]];
    if (a.offset + a.nbytes > b.offset) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensors '%s' [%d, %d) and '%s' [%d, %d) overlap", a.name, a.offset,
          a.offset + a.nbytes, b.name, b.offset, b.offset + b.nbytes));
    }
  }
  return absl::OkStatus();
}

const Value* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const TensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace llmesh::gguf
