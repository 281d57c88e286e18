// JSON Schema → GBNF. Each subschema becomes a rule named after its path
// (root-arguments-city), so a grammar error or a debug dump points at the
// schema. The output language is a subset of what the schema accepts: one
// canonical spelling (compact whitespace, properties in declared order, no
// extra properties, numbers of bounded length), which is all a generator
// needs and keeps tiny models able to finish. Whatever cannot be expressed
// exactly is rejected by name rather than approximated.
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "llmesh/common/json_parse.h"
#include "llmesh/engine/grammar.h"
#include "nlohmann/json.hpp"

namespace llmesh::engine {

namespace {

using Json = nlohmann::ordered_json;  // properties keep their declared order

constexpr int kMaxDepth = 64;
constexpr int kMaxIntDigits = 15;  // |bounded integers| < 10^15 (exact in a double)

// The building blocks, added to the output only when used.
const std::map<std::string, std::string>& Primitives() {
  static const auto* p = new std::map<std::string, std::string>{
      {"ws", R"(" "?)"},
      {"char", R"([^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))"},
      {"string", R"("\"" char* "\"")"},
      {"integer", R"("-"? ("0" | [1-9] [0-9]{0,15}))"},
      {"number", R"("-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?)"},
      {"boolean", R"("true" | "false")"},
      {"null", R"("null")"},
      {"value", R"(object | array | string | number | boolean | null)"},
      {"object", R"("{" ws (string ":" ws value ("," ws string ":" ws value)*)? "}")"},
      {"array", R"("[" ws (value ("," ws value)*)? "]")"},
  };
  return *p;
}
const std::map<std::string, std::vector<std::string>>& PrimitiveDeps() {
  static const auto* d = new std::map<std::string, std::vector<std::string>>{
      {"string", {"char"}},
      {"value", {"object", "array", "string", "number", "boolean", "null"}},
      {"object", {"ws", "string", "value"}},
      {"array", {"ws", "value"}},
  };
  return *d;
}

bool IsAnnotation(const std::string& k) {
  return k == "title" || k == "description" || k == "$schema" || k == "$id" || k == "$comment" ||
         k == "examples" || k == "default" || k == "deprecated" || k == "readOnly" || k == "writeOnly";
}

bool IsSupported(const std::string& k) {
  static const char* kKeys[] = {"type",      "properties", "required",         "additionalProperties",
                                "items",     "minItems",   "maxItems",         "minLength",
                                "maxLength", "pattern",    "minimum",          "maximum",
                                "exclusiveMinimum", "exclusiveMaximum", "enum", "const",
                                "anyOf",     "oneOf",      "allOf",            "$ref",
                                "$defs",     "definitions"};
  for (const char* s : kKeys) {
    if (k == s) return true;
  }
  return IsAnnotation(k);
}

// A GBNF string literal whose text is `bytes` (valid UTF-8).
std::string Literal(std::string_view bytes) {
  std::string out = "\"";
  for (char ch : bytes) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string Repeat(const std::string& item, uint64_t min, std::optional<uint64_t> max) {
  if (max.has_value()) return absl::StrCat(item, "{", min, ",", *max, "}");
  return absl::StrCat(item, "{", min, ",}");
}

// ---- integer ranges as digit patterns --------------------------------------

// Numbers with exactly x.size() digits in [x, y] (x, y same length, x <= y).
std::string SameLength(const std::string& x, const std::string& y) {
  const size_t n = x.size();
  if (n == 1) return x == y ? Literal(x) : absl::StrCat("[", x, "-", y, "]");
  const std::string xr = x.substr(1), yr = y.substr(1);
  if (x[0] == y[0]) return absl::StrCat(Literal(x.substr(0, 1)), " ", SameLength(xr, yr));
  auto any_digits = [](size_t k) { return k == 1 ? std::string("[0-9]") : absl::StrCat("[0-9]{", k, "}"); };
  if (xr == std::string(n - 1, '0') && yr == std::string(n - 1, '9')) {
    return absl::StrCat("[", x.substr(0, 1), "-", y.substr(0, 1), "] ", any_digits(n - 1));
  }
  std::string alts = absl::StrCat(Literal(x.substr(0, 1)), " ", SameLength(xr, std::string(n - 1, '9')));
  if (x[0] + 1 <= y[0] - 1) {
    absl::StrAppend(&alts, " | [", std::string(1, static_cast<char>(x[0] + 1)), "-",
                    std::string(1, static_cast<char>(y[0] - 1)), "] ", any_digits(n - 1));
  }
  absl::StrAppend(&alts, " | ", Literal(y.substr(0, 1)), " ", SameLength(std::string(n - 1, '0'), yr));
  return absl::StrCat("(", alts, ")");
}

// Non-negative integers in [a, b], without leading zeros.
std::string NonNegative(int64_t a, int64_t b) {
  std::vector<std::string> alts;
  int64_t low = 0, high = 9;  // the d-digit numbers
  for (int d = 1; d <= kMaxIntDigits; ++d) {
    const int64_t lo = std::max(a, low), hi = std::min(b, high);
    if (lo <= hi) alts.push_back(SameLength(std::to_string(lo), std::to_string(hi)));
    low = high + 1;
    high = high * 10 + 9;
  }
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) absl::StrAppend(&out, i ? " | " : "", alts[i]);
  return out + ")";
}

// ---- pattern (regex subset) → GBNF -------------------------------------------

class PatternCompiler {
 public:
  explicit PatternCompiler(std::string_view re) : re_(re) {}

  absl::StatusOr<std::string> Run() {
    bool head = !re_.empty() && re_.front() == '^';
    bool tail = re_.size() > 1 && re_.back() == '$' && re_[re_.size() - 2] != '\\';
    if (head) pos_ = 1;
    end_ = tail ? re_.size() - 1 : re_.size();
    std::string body = Alt(0);
    if (!error_.empty()) return absl::InvalidArgumentError(absl::StrCat("pattern ", Dump(Json(std::string(re_))), ": ", error_));
    if (pos_ != end_) return absl::InvalidArgumentError(absl::StrCat("pattern ", Dump(Json(std::string(re_))), ": unexpected '", std::string(1, re_[pos_]), "'"));
    // Unanchored means "contains": anything may come before / after.
    return absl::StrCat(head ? "" : "char* ", "(", body, ")", tail ? "" : " char*");
  }

 private:
  bool More() const { return pos_ < end_ && error_.empty(); }
  void Fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
  }

  std::string Alt(int depth) {
    if (depth > 32) {
      Fail("groups nested too deeply");
      return "";
    }
    std::string out = Seq(depth);
    while (More() && re_[pos_] == '|') {
      ++pos_;
      out += " | " + Seq(depth);
    }
    return out;
  }

  std::string Seq(int depth) {
    std::string out = "\"\"";
    while (More() && re_[pos_] != '|' && re_[pos_] != ')') {
      std::string atom = Atom(depth);
      if (!error_.empty()) return out;
      if (More()) atom += Quantifier();
      out += " " + atom;
    }
    return out;
  }

  std::string Quantifier() {
    const char c = re_[pos_];
    std::string q;
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      q = std::string(1, c);
    } else if (c == '{') {
      const size_t close = re_.find('}', pos_);
      if (close == std::string_view::npos || close > end_) {
        Fail("unclosed '{'");
        return "";
      }
      q = std::string(re_.substr(pos_, close - pos_ + 1));
      for (char d : q.substr(1, q.size() - 2)) {
        if (!(d >= '0' && d <= '9') && d != ',') Fail("malformed {m,n} quantifier");
      }
      pos_ = close + 1;
    } else {
      return "";
    }
    if (More() && (re_[pos_] == '?' || re_[pos_] == '+')) Fail("lazy/possessive quantifiers are not supported");
    return q;
  }

  // A code point written as a GBNF class member (escaped: safe in any class).
  static std::string ClassChar(uint32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return std::string(1, static_cast<char>(c));
    char buf[16];
    snprintf(buf, sizeof(buf), c <= 0xFFFF ? "\\u%04X" : "\\U%08X", c);
    return buf;
  }

  // The text a JSON encoder writes for a character of the string's value.
  static std::string JsonChar(uint32_t c, std::string_view utf8) {
    if (c == '"') return Literal("\\\"");
    if (c == '\\') return Literal("\\\\");
    if (c == '\n') return Literal("\\n");
    if (c == '\t') return Literal("\\t");
    if (c == '\r') return Literal("\\r");
    if (c < 0x20) return Literal(absl::StrCat("\\u00", c < 16 ? "0" : "1", std::string(1, "0123456789abcdef"[c & 15])));
    return Literal(utf8);
  }

  uint32_t NextCodePoint(std::string* utf8) {
    const unsigned char c = static_cast<unsigned char>(re_[pos_]);
    const int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    uint32_t cp = n == 1 ? c : c & (0x3F >> (n - 1));
    *utf8 = std::string(re_.substr(pos_, n));
    for (int i = 1; i < n && pos_ + i < re_.size(); ++i) cp = (cp << 6) | (re_[pos_ + i] & 0x3F);
    pos_ += n;
    return cp;
  }

  std::string Atom(int depth) {
    const char c = re_[pos_];
    if (c == '(') {
      ++pos_;
      if (re_.substr(pos_, 2) == "?:") {
        pos_ += 2;
      } else if (pos_ < end_ && re_[pos_] == '?') {
        Fail("lookaround and named groups are not supported");
        return "";
      }
      std::string inner = Alt(depth + 1);
      if (pos_ >= end_ || re_[pos_] != ')') {
        Fail("unclosed '('");
        return "";
      }
      ++pos_;
      return "(" + inner + ")";
    }
    if (c == '[') return Class();
    if (c == '.') {
      ++pos_;
      return "[^\"\\\\\\x00-\\x1f]";
    }
    if (c == '^' || c == '$') {
      Fail("anchors are only supported at the start and end");
      return "";
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') {
      Fail(absl::StrCat("'", std::string(1, c), "' has nothing to repeat"));
      return "";
    }
    if (c == '\\') {
      ++pos_;
      if (pos_ >= end_) {
        Fail("trailing '\\'");
        return "";
      }
      const char e = re_[pos_++];
      switch (e) {
        case 'd': return "[0-9]";
        case 'w': return "[a-zA-Z0-9_]";
        case 's': return "\" \"";  // the one whitespace that needs no JSON escape
        case 'D': return "[^0-9\"\\\\\\x00-\\x1f]";
        case 'W': return "[^a-zA-Z0-9_\"\\\\\\x00-\\x1f]";
        case 'S': return "[^ \"\\\\\\x00-\\x1f]";
        case 'n': return JsonChar('\n', "\n");
        case 't': return JsonChar('\t', "\t");
        default:
          if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
            Fail(absl::StrCat("escape '\\", std::string(1, e), "' is not supported"));
            return "";
          }
          return JsonChar(static_cast<uint8_t>(e), std::string(1, e));
      }
    }
    std::string utf8;
    const uint32_t cp = NextCodePoint(&utf8);
    return JsonChar(cp, utf8);
  }

  std::string Class() {
    ++pos_;  // '['
    bool negated = false;
    if (pos_ < end_ && re_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    std::string members;
    bool first = true;
    while (pos_ < end_ && (re_[pos_] != ']' || first)) {
      first = false;
      uint32_t lo = 0;
      std::string utf8;
      if (re_[pos_] == '\\') {
        ++pos_;
        if (pos_ >= end_) break;
        const char e = re_[pos_++];
        if (e == 'd') { members += "0-9"; continue; }
        if (e == 'w') { members += "a-zA-Z0-9_"; continue; }
        if (e == 's') { members += " "; continue; }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
          Fail(absl::StrCat("escape '\\", std::string(1, e), "' in a class is not supported"));
          return "";
        }
        lo = static_cast<uint8_t>(e);
      } else {
        lo = NextCodePoint(&utf8);
      }
      uint32_t hi = lo;
      if (pos_ + 1 < end_ && re_[pos_] == '-' && re_[pos_ + 1] != ']') {
        ++pos_;
        if (re_[pos_] == '\\') {
          ++pos_;
          hi = static_cast<uint8_t>(re_[pos_++]);
        } else {
          hi = NextCodePoint(&utf8);
        }
      }
      if (hi < lo) {
        Fail("reversed range in class");
        return "";
      }
      // Members needing a JSON escape would have to be written as escapes:
      // outside this subset (a negated class simply excludes them below).
      if (!negated && (lo < 0x20 || (lo <= '"' && '"' <= hi) || (lo <= '\\' && '\\' <= hi))) {
        Fail("a class containing '\"', '\\\\' or control characters is not supported");
        return "";
      }
      members += ClassChar(lo);
      if (hi != lo) members += "-" + ClassChar(hi);
    }
    if (pos_ >= end_) {
      Fail("unclosed '['");
      return "";
    }
    ++pos_;  // ']'
    if (negated) return "[^" + members + "\"\\\\\\x00-\\x1f]";
    return "[" + members + "]";
  }

  std::string_view re_;
  size_t pos_ = 0, end_ = 0;
  std::string error_;
};

// ---- the schema walk -----------------------------------------------------------

class SchemaCompiler {
 public:
  SchemaCompiler(const Json& root, const GrammarLimits& limits) : root_(root), limits_(limits) {}

  absl::StatusOr<std::string> Run() {
    std::string expr = Compile(root_, "root", 0);
    if (!status_.ok()) return status_;
    std::string out = absl::StrCat("root ::= ", expr, "\n");
    for (const auto& [name, body] : rules_) absl::StrAppend(&out, name, " ::= ", body, "\n");
    std::vector<std::string> todo(used_.begin(), used_.end());
    std::set<std::string> done;
    while (!todo.empty()) {
      std::string p = todo.back();
      todo.pop_back();
      if (!done.insert(p).second) continue;
      absl::StrAppend(&out, p, " ::= ", Primitives().at(p), "\n");
      auto deps = PrimitiveDeps().find(p);
      if (deps != PrimitiveDeps().end()) todo.insert(todo.end(), deps->second.begin(), deps->second.end());
    }
    return out;
  }

 private:
  void Fail(const std::string& path, const std::string& msg) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(absl::StrCat("json_schema: at ", path, ": ", msg));
  }
  std::string Use(const std::string& primitive) {
    used_.insert(primitive);
    if (primitive == "string" || primitive == "object" || primitive == "array") used_.insert("ws");
    return primitive;
  }
  // A rule for `body`, named from the path; returns its name.
  std::string AddRule(const std::string& path, const std::string& body) {
    std::string name;
    for (char c : path) name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '-';
    // A renamed rule may collide in turn (an anyOf at the root: its branch
    // "root-1" exists before the anyOf's own "root" is renamed).
    const std::string base = name;
    while (rules_.contains(name) || name == "root") name = absl::StrCat(base, "-", ++n_unique_);
    rules_[name] = body;
    if (rules_.size() > limits_.max_rules) Fail(path, "schema needs too many rules");
    return name;
  }

  // Returns a GBNF expression for `s` (usually a rule name).
  std::string Compile(const Json& s, const std::string& path, int depth) {
    if (!status_.ok()) return "";
    if (depth > kMaxDepth) return Fail(path, "schema nested too deeply"), "";
    if (s.is_boolean()) {
      if (s.get<bool>()) return Use("value");
      return Fail(path, "schema 'false' accepts nothing"), "";
    }
    if (!s.is_object()) return Fail(path, "a schema must be an object or a boolean"), "";
    for (const auto& [k, v] : s.items()) {
      if (!IsSupported(k)) return Fail(path, absl::StrCat("unsupported keyword '", k, "'")), "";
    }
    auto only = [&](std::initializer_list<const char*> allowed, const char* what) {
      for (const auto& [k, v] : s.items()) {
        bool ok = IsAnnotation(k) || k == "$defs" || k == "definitions";
        for (const char* a : allowed) ok = ok || k == a;
        if (!ok) Fail(path, absl::StrCat("keyword '", k, "' beside ", what, " is not supported"));
      }
    };
    if (s.contains("$ref")) {
      only({"$ref"}, "$ref");
      return Ref(s["$ref"], path, depth);
    }
    if (s.contains("const")) {
      only({"const", "type"}, "const");
      return Literal(Dump(s["const"]));
    }
    if (s.contains("enum")) {
      only({"enum", "type"}, "enum");
      const Json& e = s["enum"];
      if (!e.is_array() || e.empty()) return Fail(path, "enum must be a non-empty array"), "";
      std::string alts;
      for (const Json& v : e) absl::StrAppend(&alts, alts.empty() ? "" : " | ", Literal(Dump(v)));
      return AddRule(path, alts);
    }
    for (const char* key : {"anyOf", "oneOf", "allOf"}) {
      if (!s.contains(key)) continue;
      only({key}, key);
      const Json& list = s[key];
      if (!list.is_array() || list.empty()) return Fail(path, absl::StrCat(key, " must be a non-empty array")), "";
      if (std::string(key) == "allOf" && list.size() != 1) return Fail(path, "allOf with more than one schema is not supported"), "";
      std::string alts;
      for (size_t i = 0; i < list.size(); ++i) {
        absl::StrAppend(&alts, i ? " | " : "", Compile(list[i], absl::StrCat(path, "-", i), depth + 1));
      }
      return AddRule(path, alts);
    }
    if (s.contains("type")) {
      const Json& t = s["type"];
      if (t.is_string()) return Typed(s, t.get<std::string>(), path, depth);
      if (!t.is_array() || t.empty()) return Fail(path, "type must be a string or a non-empty array"), "";
      std::string alts;
      for (const Json& one : t) {
        if (!one.is_string()) return Fail(path, "type entries must be strings"), "";
        absl::StrAppend(&alts, alts.empty() ? "" : " | ", Typed(s, one.get<std::string>(), path + "-" + one.get<std::string>(), depth));
      }
      return AddRule(path, alts);
    }
    if (s.contains("properties") || s.contains("additionalProperties")) return Typed(s, "object", path, depth);
    if (s.contains("items")) return Typed(s, "array", path, depth);
    return Use("value");
  }

  std::string Ref(const Json& ref, const std::string& path, int depth) {
    if (!ref.is_string()) return Fail(path, "$ref must be a string"), "";
    const std::string r = ref.get<std::string>();
    auto known = refs_.find(r);
    if (known != refs_.end()) return known->second;  // also breaks recursion
    std::string section, name;
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      if (r.rfind(prefix, 0) == 0) {
        section = std::string(prefix).substr(2, std::string(prefix).size() - 3);
        name = r.substr(std::string(prefix).size());
      }
    }
    if (section.empty() || name.empty() || name.find('/') != std::string::npos || name.find('~') != std::string::npos) {
      return Fail(path, absl::StrCat("$ref '", r, "' is not supported (only #/$defs/<name> and #/definitions/<name>)")), "";
    }
    if (!root_.contains(section) || !root_[section].is_object() || !root_[section].contains(name)) {
      return Fail(path, absl::StrCat("$ref '", r, "' does not resolve")), "";
    }
    const std::string rule = AddRule("def-" + name, "\"\"");  // placeholder, filled below
    refs_[r] = rule;
    rules_[rule] = Compile(root_[section][name], "def-" + name, depth + 1);
    return rule;
  }

  std::optional<int64_t> Bound(const Json& s, const char* key, const std::string& path, int64_t rounding) {
    if (!s.contains(key)) return std::nullopt;
    const Json& v = s[key];
    if (!v.is_number()) return Fail(path, absl::StrCat(key, " must be a number")), std::nullopt;
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) >= 1e15) return Fail(path, absl::StrCat(key, " must be below 10^15 in magnitude")), std::nullopt;
    // minimum 1.5 on an integer means >= 2; maximum 1.5 means <= 1.
    return static_cast<int64_t>(rounding > 0 ? std::ceil(d) : std::floor(d));
  }

  std::optional<uint64_t> Count(const Json& s, const char* key, const std::string& path) {
    if (!s.contains(key)) return std::nullopt;
    const Json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) return Fail(path, absl::StrCat(key, " must be a non-negative integer")), std::nullopt;
    if (v.get<uint64_t>() > limits_.max_repeat) {
      return Fail(path, absl::StrCat(key, " above ", limits_.max_repeat, " is not supported")), std::nullopt;
    }
    return v.get<uint64_t>();
  }

  std::string Typed(const Json& s, const std::string& type, const std::string& path, int depth) {
    if (type == "boolean" || type == "null") return Use(type);
    if (type == "string") return String(s, path);
    if (type == "integer") return Integer(s, path);
    if (type == "number") {
      for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
        if (s.contains(k)) return Fail(path, absl::StrCat("'", k, "' on type number is not supported (use type integer)")), "";
      }
      return Use("number");
    }
    if (type == "object") return Object(s, path, depth);
    if (type == "array") return Array(s, path, depth);
    return Fail(path, absl::StrCat("unknown type '", type, "'")), "";
  }

  std::string String(const Json& s, const std::string& path) {
    const auto min = Count(s, "minLength", path);
    const auto max = Count(s, "maxLength", path);
    if (!status_.ok()) return "";
    if (s.contains("pattern")) {
      if (min || max) return Fail(path, "pattern together with minLength/maxLength is not supported"), "";
      if (!s["pattern"].is_string()) return Fail(path, "pattern must be a string"), "";
      auto body = PatternCompiler(s["pattern"].get<std::string>()).Run();
      if (!body.ok()) return Fail(path, std::string(body.status().message())), "";
      Use("char");
      return AddRule(path, absl::StrCat("\"\\\"\" ", *body, " \"\\\"\""));
    }
    if (!min && !max) return Use("string");
    if (min && max && *min > *max) return Fail(path, "minLength > maxLength"), "";
    Use("char");
    return AddRule(path, absl::StrCat("\"\\\"\" ", Repeat("char", min.value_or(0), max), " \"\\\"\""));
  }

  std::string Integer(const Json& s, const std::string& path) {
    auto lo = Bound(s, "minimum", path, +1);
    auto hi = Bound(s, "maximum", path, -1);
    if (auto x = Bound(s, "exclusiveMinimum", path, -1)) lo = std::max(lo.value_or(*x + 1), *x + 1);
    if (auto x = Bound(s, "exclusiveMaximum", path, +1)) hi = std::min(hi.value_or(*x - 1), *x - 1);
    if (!status_.ok()) return "";
    if (!lo && !hi) return Use("integer");
    const int64_t kLimit = 999'999'999'999'999;  // 15 digits
    const int64_t a = std::max(lo.value_or(-kLimit), -kLimit), b = std::min(hi.value_or(kLimit), kLimit);
    if (a > b) return Fail(path, "the integer range is empty"), "";
    std::string alts;
    if (a < 0) alts = absl::StrCat("\"-\" ", NonNegative(std::max<int64_t>(1, -std::min<int64_t>(b, -1)), -a));
    if (b >= 0) absl::StrAppend(&alts, alts.empty() ? "" : " | ", NonNegative(std::max<int64_t>(a, 0), b));
    return AddRule(path, alts);
  }

  std::string Object(const Json& s, const std::string& path, int depth) {
    const Json empty = Json::object();
    const Json& props = s.contains("properties") ? s["properties"] : empty;
    if (!props.is_object()) return Fail(path, "properties must be an object"), "";
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return Fail(path, "required must be an array"), "";
      for (const Json& r : s["required"]) {
        if (!r.is_string()) return Fail(path, "required entries must be strings"), "";
        if (!props.contains(r.get<std::string>())) {
          return Fail(path, absl::StrCat("required property '", r.get<std::string>(), "' is not in properties")), "";
        }
        required.insert(r.get<std::string>());
      }
    }
    const Json* extra = s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
    if (extra && !extra->is_boolean() && !extra->is_object()) return Fail(path, "additionalProperties must be a boolean or a schema"), "";
    if (props.empty()) {
      // A map: extra properties are the only ones. Absent/true: any values.
      if (extra && extra->is_boolean() && !extra->get<bool>()) return AddRule(path, "\"{\" \"}\"");
      if (!extra || extra->is_boolean()) return Use("object");
      const std::string v = Compile(*extra, path + "-value", depth + 1);
      Use("string");
      return AddRule(path, absl::StrCat("\"{\" ws (string \":\" ws ", v, " (\",\" ws string \":\" ws ", v, ")*)? \"}\""));
    }
    // Declared properties only, in order (a subset of what the schema allows
    // when additionalProperties is not false). With optional ones:
    //   first_i: nothing written yet; rest_i: something was, so prefix ",".
    std::vector<std::string> kv;
    std::vector<bool> req;
    for (const auto& [name, sub] : props.items()) {
      const std::string v = Compile(sub, path + "-" + name, depth + 1);
      kv.push_back(absl::StrCat(Literal(Dump(Json(name))), " \":\" ws ", v));
      req.push_back(required.contains(name));
    }
    Use("ws");
    const size_t n = kv.size();
    std::vector<std::string> rest(n + 1), first(n + 1);
    rest[n] = "\"\"";
    first[n] = "\"\"";
    for (size_t i = n; i-- > 0;) {
      const std::string item = absl::StrCat("\",\" ws ", kv[i]);
      rest[i] = AddRule(absl::StrCat(path, "-rest", i),
                        req[i] ? absl::StrCat(item, " ", rest[i + 1]) : absl::StrCat("(", item, ")? ", rest[i + 1]));
      std::string f = absl::StrCat(kv[i], " ", rest[i + 1]);
      if (!req[i]) absl::StrAppend(&f, " | ", first[i + 1]);
      first[i] = AddRule(absl::StrCat(path, "-first", i), f);
    }
    return AddRule(path, absl::StrCat("\"{\" ", first[0], " \"}\""));
  }

  std::string Array(const Json& s, const std::string& path, int depth) {
    std::string item = Use("value");
    if (s.contains("items")) {
      if (s["items"].is_array()) return Fail(path, "items as an array (tuple) is not supported"), "";
      item = Compile(s["items"], path + "-item", depth + 1);
    }
    const auto min = Count(s, "minItems", path);
    const auto max = Count(s, "maxItems", path);
    if (!status_.ok()) return "";
    if (min && max && *min > *max) return Fail(path, "minItems > maxItems"), "";
    Use("ws");
    if (max && *max == 0) return AddRule(path, "\"[\" \"]\"");
    const uint64_t lo = min.value_or(0);
    std::optional<uint64_t> more_max;
    if (max) more_max = *max - 1;
    const std::string more = Repeat(absl::StrCat("(\",\" ws ", item, ")"), lo > 0 ? lo - 1 : 0, more_max);
    const std::string items = absl::StrCat(item, " ", more);
    return AddRule(path, absl::StrCat("\"[\" ", lo > 0 ? items : absl::StrCat("(", items, ")?"), " \"]\""));
  }

  const Json& root_;
  const GrammarLimits& limits_;
  absl::Status status_;
  std::map<std::string, std::string> rules_;
  std::map<std::string, std::string> refs_;
  std::set<std::string> used_;
  int n_unique_ = 0;
};

}  // namespace

absl::StatusOr<std::string> JsonSchemaToGrammar(std::string_view schema_json, const GrammarLimits& limits) {
  if (schema_json.size() > limits.max_text_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("json_schema: ", schema_json.size(), " bytes exceeds the limit of ",
                                                   limits.max_text_bytes));
  }
  // Bounded parse: nesting beyond kMaxJsonDepth is refused before it is built
  // (the walk, and dumps of const/enum values, recurse per level), and wide
  // objects cost linear time (ordered_json's own insert is quadratic).
  auto schema = ParseJson<Json>(schema_json);
  if (!schema.ok()) return absl::InvalidArgumentError(absl::StrCat("json_schema: ", schema.status().message()));
  return SchemaCompiler(*schema, limits).Run();
}

absl::StatusOr<std::shared_ptr<const Grammar>> CompileSamplingGrammar(const SamplingConfig& config) {
  if (!config.grammar.empty() && !config.json_schema.empty()) {
    return absl::InvalidArgumentError("sampling: set at most one of grammar and json_schema");
  }
  if (!config.grammar.empty()) return Grammar::Parse(config.grammar);
  if (config.json_schema.empty()) return std::shared_ptr<const Grammar>();
  auto text = JsonSchemaToGrammar(config.json_schema);
  if (!text.ok()) return text.status();
  auto g = Grammar::Parse(*text);
  if (!g.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("json_schema: compiled grammar is invalid: ", g.status().message()));
  }
  return g;
}

}  // namespace llmesh::engine
