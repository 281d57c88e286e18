// The `calculator` tool's evaluator: arithmetic on doubles, parsed by hand
// (recursive descent), never by evaluating code. Untrusted input: every
// failure is INVALID_ARGUMENT with the position, nothing throws, the input
// length and nesting depth are capped.
//
//   expression := sum
//   sum        := product (("+" | "-") product)*
//   product    := unary (("*" | "/" | "%") unary)*
//   unary      := ("-" | "+") unary | power
//   power      := primary ("^" unary)?          right-associative; -2^2 = -4
//   primary    := number | "(" sum ")" | name | name "(" sum ("," sum)* ")"
//   number     := digits ["." digits] [("e" | "E") ["+" | "-"] digits]
//
// Names: the constants pi and e; the functions sqrt, abs, floor, ceil, round,
// exp, ln, log10, log2, sin, cos, tan (one argument), min, max (one or more).
// `%` is the floating-point remainder (fmod). Division or remainder by zero,
// a function outside its domain (sqrt(-1), ln(0)) and a result that is not
// finite (overflow) are errors.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace llmesh::agent {

inline constexpr size_t kMaxExpressionBytes = 1024;
inline constexpr int kMaxExpressionDepth = 64;

absl::StatusOr<double> EvaluateExpression(std::string_view expression);

// Integers (up to 2^53) without a decimal point, others with up to 15
// significant digits: "14", "0.333333333333333", "1e+20".
std::string FormatNumber(double value);

}  // namespace llmesh::agent
