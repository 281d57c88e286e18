#include "llmesh/agent/calculator.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <vector>

#include "absl/strings/str_cat.h"

namespace llmesh::agent {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_'; }

// One parse of one expression. Errors stop at the first one (status_), and
// every parse function returns 0 after an error so callers need not check
// before combining values.
class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  absl::StatusOr<double> Run() {
    Skip();
    if (pos_ == s_.size()) return absl::InvalidArgumentError("empty expression");
    double v = Sum(0);
    Skip();
    if (status_.ok() && pos_ != s_.size()) Fail(absl::StrCat("unexpected '", std::string(1, s_[pos_]), "'"));
    if (!status_.ok()) return status_;
    if (!std::isfinite(v)) return absl::InvalidArgumentError("result is not a finite number");
    return v;
  }

 private:
  void Fail(const std::string& msg) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(absl::StrCat(msg, " at position ", pos_ + 1));
  }
  void Skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Eat(char c) {
    Skip();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // Overflow is caught where it happens: a later operation could hide it
  // (1 / 10^400 would be 0).
  double Finite(double v) {
    if (!std::isfinite(v) && status_.ok()) Fail("overflow: the result is not a finite number");
    return v;
  }
  bool Deeper(int depth) {
    if (depth < kMaxExpressionDepth) return true;
    Fail(absl::StrCat("nesting deeper than ", kMaxExpressionDepth));
    return false;
  }

  double Sum(int depth) {
    if (!Deeper(depth)) return 0;
    double v = Product(depth);
    while (status_.ok()) {
      if (Eat('+')) {
        v = Finite(v + Product(depth));
      } else if (Eat('-')) {
        v = Finite(v - Product(depth));
      } else {
        break;
      }
    }
    return v;
  }

  double Product(int depth) {
    double v = Unary(depth);
    while (status_.ok()) {
      size_t at = pos_;
      if (Eat('*')) {
        v = Finite(v * Unary(depth));
      } else if (Eat('/')) {
        double d = Unary(depth);
        if (status_.ok() && d == 0) {
          pos_ = at;
          Skip();
          Fail("division by zero");
          return 0;
        }
        v = Finite(v / d);
      } else if (Eat('%')) {
        double d = Unary(depth);
        if (status_.ok() && d == 0) {
          pos_ = at;
          Skip();
          Fail("remainder by zero");
          return 0;
        }
        v = std::fmod(v, d);
      } else {
        break;
      }
    }
    return v;
  }

  double Unary(int depth) {
    if (!Deeper(depth)) return 0;
    if (Eat('-')) return -Unary(depth + 1);
    if (Eat('+')) return Unary(depth + 1);
    return Power(depth);
  }

  double Power(int depth) {
    double base = Primary(depth);
    if (status_.ok() && Eat('^')) {
      double exp = Unary(depth + 1);
      if (!status_.ok()) return 0;
      if (base == 0 && exp < 0) {
        Fail("zero raised to a negative power");
        return 0;
      }
      if (base < 0 && exp != std::floor(exp)) {
        Fail("negative number raised to a fractional power");
        return 0;
      }
      return Finite(std::pow(base, exp));
    }
    return base;
  }

  double Primary(int depth) {
    Skip();
    if (pos_ >= s_.size()) {
      Fail("expected a number, a name or '('");
      return 0;
    }
    char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      double v = Sum(depth + 1);
      if (status_.ok() && !Eat(')')) Fail("expected ')'");
      return v;
    }
    if (IsDigit(c) || c == '.') return Number();
    if (IsNameChar(c)) return Name(depth);
    Fail(absl::StrCat("unexpected '", std::string(1, c), "'"));
    return 0;
  }

  double Number() {
    size_t begin = pos_;
    while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t e = pos_ + 1;
      if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
      if (e < s_.size() && IsDigit(s_[e])) {
        pos_ = e;
        while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
      }
    }
    double v = 0;
    auto [end, ec] = std::from_chars(s_.data() + begin, s_.data() + pos_, v);
    if (end != s_.data() + pos_ || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
      pos_ = begin;
      Fail("malformed number");
      return 0;
    }
    if (ec == std::errc::result_out_of_range) {
      // from_chars leaves `v` alone; strtod tells overflow (HUGE_VAL) from
      // underflow (which is just 0).
      std::string text(s_.substr(begin, pos_ - begin));
      if (std::isinf(std::strtod(text.c_str(), nullptr))) {
        pos_ = begin;
        Fail("number out of range");
        return 0;
      }
      return 0;
    }
    return v;
  }

  double Name(int depth) {
    size_t begin = pos_;
    while (pos_ < s_.size() && IsNameChar(s_[pos_])) ++pos_;
    std::string name(s_.substr(begin, pos_ - begin));
    if (!Eat('(')) {
      if (name == "pi") return std::numbers::pi;
      if (name == "e") return std::numbers::e;
      pos_ = begin;
      Fail(absl::StrCat("unknown name '", name, "'"));
      return 0;
    }
    if (!IsFunction(name)) {
      pos_ = begin;
      Fail(absl::StrCat("unknown function '", name, "'"));
      return 0;
    }
    std::vector<double> args;
    do {
      args.push_back(Sum(depth + 1));
    } while (status_.ok() && Eat(','));
    if (status_.ok() && !Eat(')')) Fail("expected ')' or ','");
    if (!status_.ok()) return 0;
    size_t at = pos_;
    pos_ = begin;  // errors below point at the function's name
    double v = Call(name, args);
    if (status_.ok()) pos_ = at;
    return v;
  }

  static bool IsFunction(const std::string& name) {
    for (const char* f : {"sqrt", "abs", "floor", "ceil", "round", "exp", "ln", "log10", "log2", "sin", "cos", "tan",
                          "min", "max"})
      if (name == f) return true;
    return false;
  }

  double Call(const std::string& name, const std::vector<double>& a) {
    if (name == "min" || name == "max") {
      double v = a[0];
      for (double x : a) v = name == "min" ? std::min(v, x) : std::max(v, x);
      return v;
    }
    struct Fn {
      const char* name;
      double (*fn)(double);
      double min;  // smallest argument in the domain
      bool open;   // the domain excludes `min`
    };
    static const Fn kFns[] = {
        {"sqrt", [](double x) { return std::sqrt(x); }, 0, false},
        {"abs", [](double x) { return std::fabs(x); }, -INFINITY, false},
        {"floor", [](double x) { return std::floor(x); }, -INFINITY, false},
        {"ceil", [](double x) { return std::ceil(x); }, -INFINITY, false},
        {"round", [](double x) { return std::round(x); }, -INFINITY, false},
        {"exp", [](double x) { return std::exp(x); }, -INFINITY, false},
        {"ln", [](double x) { return std::log(x); }, 0, true},
        {"log10", [](double x) { return std::log10(x); }, 0, true},
        {"log2", [](double x) { return std::log2(x); }, 0, true},
        {"sin", [](double x) { return std::sin(x); }, -INFINITY, false},
        {"cos", [](double x) { return std::cos(x); }, -INFINITY, false},
        {"tan", [](double x) { return std::tan(x); }, -INFINITY, false},
    };
    for (const Fn& f : kFns) {
      if (name != f.name) continue;
      if (a.size() != 1) {
        Fail(absl::StrCat(name, "() takes one argument, got ", a.size()));
        return 0;
      }
      if (a[0] < f.min || (f.open && a[0] == f.min)) {
        Fail(absl::StrCat(name, "() is not defined for ", FormatNumber(a[0])));
        return 0;
      }
      return Finite(f.fn(a[0]));
    }
    Fail(absl::StrCat("unknown function '", name, "'"));
    return 0;
  }

  std::string_view s_;
  size_t pos_ = 0;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<double> EvaluateExpression(std::string_view expression) {
  if (expression.size() > kMaxExpressionBytes)
    return absl::InvalidArgumentError(
        absl::StrCat("expression is ", expression.size(), " bytes; the limit is ", kMaxExpressionBytes));
  return Parser(expression).Run();
}

std::string FormatNumber(double value) {
  if (value == 0) return "0";  // also -0
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) <= 9007199254740992.0)
    return absl::StrCat(static_cast<int64_t>(value));
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15g", value);
  return buf;
}

}  // namespace llmesh::agent
