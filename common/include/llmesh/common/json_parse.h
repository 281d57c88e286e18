// JSON text from the network → an nlohmann value, at a cost linear in the
// text. nlohmann's own parse has two costs an attacker can blow up:
//   - nesting: the tree is fine to build, but everything after (copies,
//     dump, a schema compiler's walk) recurses once per level, and tens of
//     thousands of levels take seconds to minutes or the stack;
//   - wide ordered objects: ordered_json compares each new key with every
//     earlier key of its object (quadratic: 80K keys, 870 KB, took 45 s).
// ParseJson stops at the first container nested deeper than max_depth,
// before building it, and inserts into ordered objects through a hash index.
// Header-only: a template over nlohmann::json and nlohmann::ordered_json,
// which its users already link.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace llmesh {

// Objects and arrays inside one another. Requests and JSON Schemas real
// clients send stay far below; each level costs a stack frame downstream.
inline constexpr int kMaxJsonDepth = 128;

namespace json_parse_internal {

// Objects up to this many keys look a duplicate up by scanning; wider ones
// build a hash index of their keys.
inline constexpr size_t kScanKeys = 16;
using KeyIndex = absl::flat_hash_map<std::string, size_t>;

// The slot for `key` in an object; a duplicate key gets the earlier slot
// (the last value wins, as with nlohmann's parser).
template <typename K, typename V, typename C, typename A>
V& Slot(std::map<K, V, C, A>& obj, KeyIndex*, std::string&& key) {
  return obj[std::move(key)];
}
template <typename K, typename V, typename I, typename A>
V& Slot(nlohmann::ordered_map<K, V, I, A>& obj, KeyIndex* index, std::string&& key) {
  if (obj.size() < kScanKeys) {
    for (auto& kv : obj)
      if (kv.first == key) return kv.second;
  } else {
    if (index->empty())
      for (size_t i = 0; i < obj.size(); ++i) index->emplace(obj.begin()[i].first, i);
    auto [it, added] = index->try_emplace(key, obj.size());
    if (!added) return obj.begin()[it->second].second;
  }
  obj.emplace_back(std::move(key), V());  // the vector's append: no key scan
  return obj.back().second;
}

// nlohmann's SAX interface, building the tree.
template <typename Json>
class BoundedBuilder {
 public:
  using number_integer_t = typename Json::number_integer_t;
  using number_unsigned_t = typename Json::number_unsigned_t;
  using number_float_t = typename Json::number_float_t;
  using string_t = typename Json::string_t;
  using binary_t = typename Json::binary_t;

  explicit BoundedBuilder(int max_depth) : max_depth_(max_depth) {}

  bool null() { return Add(Json(nullptr)) != nullptr; }
  bool boolean(bool v) { return Add(Json(v)) != nullptr; }
  bool number_integer(number_integer_t v) { return Add(Json(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) { return Add(Json(v)) != nullptr; }
  bool number_float(number_float_t v, const string_t&) { return Add(Json(v)) != nullptr; }
  bool string(string_t& v) { return Add(Json(std::move(v))) != nullptr; }
  bool binary(binary_t& v) { return Add(Json::binary(std::move(v))) != nullptr; }
  bool key(string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) { return Open(Json::object()); }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) { return Open(Json::array()); }
  bool end_array() { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    status_ = absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", e.what()));
    return false;
  }

  absl::StatusOr<Json> Result(bool parsed) && {
    if (!status_.ok()) return status_;
    if (!parsed) return absl::InvalidArgumentError("not valid JSON");
    return std::move(root_);
  }

 private:
  // Puts `v` where the parse is (the root, an array's end, the current key).
  Json* Add(Json v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Json& parent = *open_.back();
    if (parent.is_array()) {
      auto& arr = parent.template get_ref<typename Json::array_t&>();
      arr.push_back(std::move(v));
      return &arr.back();
    }
    Json& slot = Slot(parent.template get_ref<typename Json::object_t&>(), &indexes_.back(), std::move(key_));
    slot = std::move(v);
    return &slot;
  }
  bool Open(Json container) {
    if (static_cast<int>(open_.size()) >= max_depth_) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat("nested deeper than ", max_depth_, " levels (objects and arrays inside one another)"));
      return false;
    }
    // Only the innermost open container grows, so these pointers stay valid.
    open_.push_back(Add(std::move(container)));
    indexes_.emplace_back();
    return true;
  }
  bool Close() {
    open_.pop_back();
    indexes_.pop_back();
    return true;
  }

  const int max_depth_;
  Json root_;
  std::vector<Json*> open_;
  std::vector<KeyIndex> indexes_;
  std::string key_;
  absl::Status status_;
};

}  // namespace json_parse_internal

// `text` as Json (nlohmann::json or nlohmann::ordered_json). INVALID_ARGUMENT
// when it is not JSON ("not valid JSON: <where and why>") or nests deeper than
// `max_depth` ("nested deeper than N levels ..."), for the caller to prefix.
template <typename Json>
absl::StatusOr<Json> ParseJson(std::string_view text, int max_depth = kMaxJsonDepth) {
  json_parse_internal::BoundedBuilder<Json> builder(max_depth);
  bool parsed = Json::sax_parse(text.begin(), text.end(), &builder, nlohmann::json::input_format_t::json,
                                /*strict=*/true, /*ignore_comments=*/false);
  return std::move(builder).Result(parsed);
}

}  // namespace llmesh
