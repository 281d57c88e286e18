// Metadata values: type names, numeric conversions and GgufFile's typed getters.
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::gguf {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kUint8: return "u8";
    case ValueType::kInt8: return "i8";
    case ValueType::kUint16: return "u16";
    case ValueType::kInt16: return "i16";
    case ValueType::kUint32: return "u32";
    case ValueType::kInt32: return "i32";
    case ValueType::kFloat32: return "f32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "u64";
    case ValueType::kInt64: return "i64";
    case ValueType::kFloat64: return "f64";
  }
  return "unknown";
}

absl::Status ValidateAlignment(uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > kMaxAlignment) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %d is not a power of two in [1, %d]", kAlignmentKey, alignment, kMaxAlignment));
  }
  return absl::OkStatus();
}

namespace {

// 2^63 and 2^64 as doubles: the first values that no longer fit.
constexpr double kTwo63 = 9223372036854775808.0;
constexpr double kTwo64 = 18446744073709551616.0;

bool IsInteger(double d) { return std::isfinite(d) && std::trunc(d) == d; }

}  // namespace

std::optional<uint64_t> Value::as_u64() const {
  if (const auto* u = std::get_if<uint64_t>(&v)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v)) {
    if (*i >= 0) return static_cast<uint64_t>(*i);
  }
  if (const auto* d = std::get_if<double>(&v)) {
    if (IsInteger(*d) && *d >= 0 && *d < kTwo64) return static_cast<uint64_t>(*d);
  }
  return std::nullopt;
}

std::optional<int64_t> Value::as_i64() const {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v)) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
  }
  if (const auto* d = std::get_if<double>(&v)) {
    if (IsInteger(*d) && *d >= -kTwo63 && *d < kTwo63) return static_cast<int64_t>(*d);
  }
  return std::nullopt;
}

std::optional<double> Value::as_f64() const {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&v)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  return std::nullopt;
}

std::optional<std::string_view> Value::as_string() const {
  if (const auto* s = std::get_if<std::string_view>(&v)) return *s;
  return std::nullopt;
}

const Array* Value::as_array() const { return std::get_if<Array>(&v); }

namespace {

absl::Status NotFound(std::string_view key) {
  return absl::NotFoundError(absl::StrFormat("metadata key '%s' not found", key));
}

absl::Status WrongType(std::string_view key, const Value& v, std::string_view wanted) {
  if (v.type == ValueType::kArray) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "metadata key '%s' is an array of %s, expected %s", key, value_type_name(v.array_type),
        wanted));
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "metadata key '%s' is a %s, expected %s", key, value_type_name(v.type), wanted));
}

bool IsIntegerType(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16:
    case ValueType::kInt16: case ValueType::kUint32: case ValueType::kInt32:
    case ValueType::kUint64: case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsFloatType(ValueType t) { return t == ValueType::kFloat32 || t == ValueType::kFloat64; }

}  // namespace

absl::StatusOr<std::string_view> GgufFile::GetString(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return NotFound(key);
  if (auto s = v->as_string()) return *s;
  return WrongType(key, *v, "a string");
}

absl::StatusOr<uint64_t> GgufFile::GetU64(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return NotFound(key);
  if (!IsIntegerType(v->type)) return WrongType(key, *v, "an unsigned integer");
  if (auto u = v->as_u64()) return *u;
  return absl::InvalidArgumentError(absl::StrFormat(
      "metadata key '%s' = %d is negative, expected an unsigned integer", key, *v->as_i64()));
}

absl::StatusOr<uint32_t> GgufFile::GetU32(std::string_view key) const {
  absl::StatusOr<uint64_t> u = GetU64(key);
  if (!u.ok()) return u.status();
  if (*u > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("metadata key '%s' = %d does not fit in u32", key, *u));
  }
  return static_cast<uint32_t>(*u);
}

absl::StatusOr<float> GgufFile::GetF32(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return NotFound(key);
  const std::optional<double> d = v->type == ValueType::kArray ? std::nullopt : v->as_f64();
  if (!d) return WrongType(key, *v, "a number");
  if (std::isfinite(*d) && std::fabs(*d) > std::numeric_limits<float>::max()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("metadata key '%s' = %g does not fit in f32", key, *d));
  }
  return static_cast<float>(*d);
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return NotFound(key);
  if (auto b = v->as_bool()) return *b;
  return WrongType(key, *v, "a bool");
}

absl::StatusOr<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return NotFound(key);
  const Array* a = v->as_array();
  if (a == nullptr || v->array_type != ValueType::kString) {
    return WrongType(key, *v, "an array of string");
  }
  std::vector<std::string_view> out;
  out.reserve(a->size());
  for (const Value& e : *a) out.push_back(std::get<std::string_view>(e.v));
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetF32Array(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return NotFound(key);
  const Array* a = v->as_array();
  if (a == nullptr || !IsFloatType(v->array_type)) return WrongType(key, *v, "an array of f32");
  std::vector<float> out;
  out.reserve(a->size());
  for (const Value& e : *a) {
    const double d = std::get<double>(e.v);
    if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "metadata key '%s': element %d = %g does not fit in f32", key, out.size(), d));
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return NotFound(key);
  const Array* a = v->as_array();
  if (a == nullptr || !IsIntegerType(v->array_type)) {
    return WrongType(key, *v, "an array of integers");
  }
  std::vector<int64_t> out;
  out.reserve(a->size());
  for (const Value& e : *a) {
    std::optional<int64_t> x = e.as_i64();
    if (!x) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "metadata key '%s': element %d = %d does not fit in i64", key, out.size(),
          std::get<uint64_t>(e.v)));
    }
    out.push_back(*x);
  }
  return out;
}

}  // namespace llmesh::gguf
