#include "llmesh/gateway/stop_matcher.h"

#include <gtest/gtest.h>

namespace llmesh::gateway {
namespace {

std::string Feed(StopMatcher& m, const std::vector<std::string>& deltas, bool* stopped) {
  std::string out;
  *stopped = false;
  for (const auto& d : deltas) {
    auto r = m.Push(d);
    out += r.text;
    if (r.stopped) {
      *stopped = true;
      return out;
    }
  }
  return out + m.Flush();
}

TEST(StopMatcherTest, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  auto r = m.Push("hello");
  EXPECT_EQ(r.text, "hello");
  EXPECT_FALSE(r.stopped);
}

TEST(StopMatcherTest, StopInsideOneDeltaIsCutAndNeverEmitted) {
  StopMatcher m({"END"});
  bool stopped;
  EXPECT_EQ(Feed(m, {"abc END def"}, &stopped), "abc ");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcherTest, StopAcrossTokenBoundaries) {
  StopMatcher m({"\n\n"});
  bool stopped;
  EXPECT_EQ(Feed(m, {"Hello", "\n", "\n", "World"}, &stopped), "Hello");
  EXPECT_TRUE(stopped);
  StopMatcher m2({"The end"});
  EXPECT_EQ(Feed(m2, {"So. T", "he e", "nd!"}, &stopped), "So. ");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcherTest, PartialMatchIsHeldThenReleased) {
  StopMatcher m({"STOP"});
  auto r = m.Push("go ST");
  EXPECT_EQ(r.text, "go ");
  r = m.Push("ART");
  EXPECT_EQ(r.text, "START");
  EXPECT_FALSE(r.stopped);
  r = m.Push("ST");
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.Flush(), "ST");
}

TEST(StopMatcherTest, EarliestOfSeveralStops) {
  StopMatcher m({"zz", "b"});
  bool stopped;
  EXPECT_EQ(Feed(m, {"aaz", "zb"}, &stopped), "aa");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcherTest, NothingAfterTheStop) {
  StopMatcher m({"x"});
  EXPECT_TRUE(m.Push("ax").stopped);
  auto r = m.Push("more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcherTest, HeldTextNeverSplitsAUtf8Character) {
  // Stop begins with the first byte of "é" (C3 A9): "é" must not be split.
  StopMatcher m({"\xC3\xA9!"});
  auto r = m.Push("caf\xC3\xA9");
  EXPECT_EQ(r.text, "caf");
  r = m.Push(" ok");
  EXPECT_EQ(r.text, "\xC3\xA9 ok");
}

TEST(Utf8Test, CompletePrefix) {
  EXPECT_EQ(Utf8CompletePrefix("abc"), 3u);
  EXPECT_EQ(Utf8CompletePrefix("a\xC3"), 1u);
  EXPECT_EQ(Utf8CompletePrefix("a\xC3\xA9"), 3u);
  EXPECT_EQ(Utf8CompletePrefix("\xE2\x82"), 0u);
  EXPECT_EQ(Utf8CompletePrefix("\xF0\x9F\x98\x80"), 4u);
}

}  // namespace
}  // namespace llmesh::gateway
