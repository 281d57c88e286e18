// The calculator tool's evaluator: precedence and associativity, functions
// and constants, every error it promises, number formatting, and garbage
// (random bytes, deep nesting, huge input) that must come back as an error,
// never a crash.
#include "llmesh/agent/calculator.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace llmesh::agent {
namespace {

double Eval(const std::string& s) {
  auto v = EvaluateExpression(s);
  EXPECT_TRUE(v.ok()) << s << ": " << v.status();
  return v.ok() ? *v : NAN;
}

std::string Error(const std::string& s) {
  auto v = EvaluateExpression(s);
  EXPECT_FALSE(v.ok()) << s << " evaluated to " << (v.ok() ? *v : 0);
  if (v.ok()) return "";
  EXPECT_TRUE(absl::IsInvalidArgument(v.status())) << v.status();
  return std::string(v.status().message());
}

TEST(CalculatorTest, Precedence) {
  EXPECT_EQ(Eval("2+3*4"), 14);
  EXPECT_EQ(Eval("(2+3)*4"), 20);
  EXPECT_EQ(Eval("10-4-3"), 3);       // left-associative
  EXPECT_EQ(Eval("100/10/5"), 2);     // left-associative
  EXPECT_EQ(Eval("2^3^2"), 512);      // right-associative
  EXPECT_EQ(Eval("2*3^2"), 18);       // ^ binds tighter than *
  EXPECT_EQ(Eval("7%4*2"), 6);        // % is multiplicative, left to right
  EXPECT_EQ(Eval(" 1 +\t2\n"), 3);    // whitespace anywhere
}

TEST(CalculatorTest, UnaryMinus) {
  EXPECT_EQ(Eval("-3"), -3);
  EXPECT_EQ(Eval("--3"), 3);
  EXPECT_EQ(Eval("+3"), 3);
  EXPECT_EQ(Eval("-2^2"), -4);        // -(2^2), as in mathematics
  EXPECT_EQ(Eval("(-2)^2"), 4);
  EXPECT_EQ(Eval("2^-1"), 0.5);
  EXPECT_EQ(Eval("3*-2"), -6);
  EXPECT_EQ(Eval("1 - -1"), 2);
}

TEST(CalculatorTest, NumbersFunctionsAndConstants) {
  EXPECT_EQ(Eval("1.5e3"), 1500);
  EXPECT_EQ(Eval(".5+.25"), 0.75);
  EXPECT_EQ(Eval("2E-2"), 0.02);
  EXPECT_EQ(Eval("sqrt(16)"), 4);
  EXPECT_EQ(Eval("abs(-2.5)"), 2.5);
  EXPECT_EQ(Eval("floor(2.7)+ceil(2.2)+round(2.5)"), 2 + 3 + 3);
  EXPECT_EQ(Eval("min(3, 1, 2)"), 1);
  EXPECT_EQ(Eval("max(3, 1+9, 2)"), 10);
  EXPECT_NEAR(Eval("ln(e)"), 1, 1e-15);
  EXPECT_NEAR(Eval("log10(1000)"), 3, 1e-15);
  EXPECT_NEAR(Eval("log2(8)"), 3, 1e-15);
  EXPECT_NEAR(Eval("sin(pi/2)+cos(0)+tan(0)"), 2, 1e-15);
  EXPECT_NEAR(Eval("exp(1)"), M_E, 1e-15);
  EXPECT_EQ(Eval("7.5%2"), 1.5);
  EXPECT_EQ(Eval("sqrt(sqrt(256))"), 4);
}

TEST(CalculatorTest, ArithmeticErrorsNameTheProblemAndPlace) {
  EXPECT_EQ(Error("1/0"), "division by zero at position 2");
  EXPECT_EQ(Error("1/(2-2)"), "division by zero at position 2");
  EXPECT_EQ(Error("5 % 0"), "remainder by zero at position 3");
  EXPECT_TRUE(absl::StrContains(Error("sqrt(-1)"), "sqrt() is not defined for -1"));
  EXPECT_TRUE(absl::StrContains(Error("ln(0)"), "ln() is not defined for 0"));
  EXPECT_TRUE(absl::StrContains(Error("0^-1"), "zero raised to a negative power"));
  EXPECT_TRUE(absl::StrContains(Error("(-8)^0.5"), "fractional power"));
  EXPECT_TRUE(absl::StrContains(Error("10^400"), "overflow"));
  EXPECT_TRUE(absl::StrContains(Error("1/10^400"), "overflow"));  // caught where it happens
  EXPECT_TRUE(absl::StrContains(Error("1e400"), "out of range"));
  EXPECT_TRUE(absl::StrContains(Error("exp(1000)"), "overflow"));
}

TEST(CalculatorTest, SyntaxErrors) {
  EXPECT_EQ(Error(""), "empty expression");
  EXPECT_EQ(Error("   "), "empty expression");
  EXPECT_TRUE(absl::StrContains(Error("(1+2"), "expected ')'"));
  EXPECT_TRUE(absl::StrContains(Error("1+2)"), "unexpected ')'"));
  EXPECT_TRUE(absl::StrContains(Error("1+"), "expected a number"));
  EXPECT_TRUE(absl::StrContains(Error("2 3"), "unexpected '3'"));
  EXPECT_TRUE(absl::StrContains(Error("foo(1)"), "unknown function 'foo'"));
  EXPECT_TRUE(absl::StrContains(Error("x+1"), "unknown name 'x'"));
  EXPECT_TRUE(absl::StrContains(Error("sqrt(1,2)"), "takes one argument"));
  EXPECT_TRUE(absl::StrContains(Error("1..2"), "unexpected '.'"));
  EXPECT_TRUE(absl::StrContains(Error("import os"), "unknown name"));
  EXPECT_TRUE(absl::StrContains(Error("__import__('os').system('ls')"), "unknown function"));
  EXPECT_TRUE(absl::StrContains(Error("1;2"), "unexpected ';'"));
}

TEST(CalculatorTest, LimitsOnSizeAndNesting) {
  EXPECT_TRUE(absl::StrContains(Error(std::string(kMaxExpressionBytes + 1, '1')), "limit"));
  EXPECT_TRUE(absl::StrContains(Error(std::string(200, '(') + "1" + std::string(200, ')')), "nesting deeper"));
  EXPECT_TRUE(absl::StrContains(Error(std::string(500, '-') + "1"), "nesting deeper"));
  EXPECT_TRUE(absl::StrContains(Error("2^" + std::string(300, '-') + "1"), "nesting deeper"));
  EXPECT_EQ(Eval(std::string(30, '(') + "1" + std::string(30, ')')), 1);  // moderate nesting is fine
}

TEST(CalculatorTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(1234);
  const std::string alphabet = "0123456789+-*/%^().,eE sqrtminpx\x01\xff\"'";
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 40, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    auto v = EvaluateExpression(s);
    if (v.ok()) {
      ++ok;
      EXPECT_TRUE(std::isfinite(*v)) << s;
    } else {
      EXPECT_TRUE(absl::IsInvalidArgument(v.status())) << s;
    }
  }
  EXPECT_GT(ok, 0);  // the alphabet does produce valid expressions
}

TEST(CalculatorTest, FormatNumber) {
  EXPECT_EQ(FormatNumber(14), "14");
  EXPECT_EQ(FormatNumber(-3), "-3");
  EXPECT_EQ(FormatNumber(-0.0), "0");
  EXPECT_EQ(FormatNumber(0.5), "0.5");
  EXPECT_EQ(FormatNumber(1.0 / 3), "0.333333333333333");
  EXPECT_EQ(FormatNumber(1e20), "1e+20");
  EXPECT_EQ(FormatNumber(9007199254740992.0), "9007199254740992");
}

}  // namespace
}  // namespace llmesh::agent
