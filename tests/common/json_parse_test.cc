#include "llmesh/common/json_parse.h"

#include <gtest/gtest.h>

#include "absl/time/clock.h"

namespace llmesh {
namespace {

std::string Nested(int depth, const std::string& open = "{\"a\":", const std::string& close = "}") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += "1";
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

std::string Wide(int keys) {
  std::string s = "{";
  for (int i = 0; i < keys; ++i) absl::StrAppend(&s, "\"k", i, "\":", i, ",");
  return s + "\"last\":true}";
}

TEST(JsonParseTest, BuildsWhatNlohmannBuilds) {
  const std::string text =
      R"({"b":[1,-2,3.5,"x",null,true,{"c":{}}],"a":{"z":1,"y":[[]]},"u":18446744073709551615,"s":"\u00e9"})";
  auto plain = ParseJson<nlohmann::json>(text);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, nlohmann::json::parse(text));
  auto ordered = ParseJson<nlohmann::ordered_json>(text);
  ASSERT_TRUE(ordered.ok()) << ordered.status();
  EXPECT_EQ(*ordered, nlohmann::ordered_json::parse(text));
  EXPECT_EQ(ordered->dump(), nlohmann::ordered_json::parse(text).dump());  // declared order kept
  for (const char* scalar : {"1", "\"s\"", "null", "[]"}) EXPECT_TRUE(ParseJson<nlohmann::json>(scalar).ok());
}

TEST(JsonParseTest, DuplicateKeysKeepTheFirstPlaceAndTheLastValueInNarrowAndWideObjects) {
  for (int keys : {3, 100}) {
    std::string text = Wide(keys);
    text.insert(text.size() - 1, ",\"k1\":\"again\",\"k1\":\"last\"");
    auto ordered = ParseJson<nlohmann::ordered_json>(text);
    ASSERT_TRUE(ordered.ok()) << ordered.status();
    EXPECT_EQ(*ordered, nlohmann::ordered_json::parse(text));
    EXPECT_EQ(ordered->dump(), nlohmann::ordered_json::parse(text).dump());
    EXPECT_EQ((*ordered)["k1"], "last");
    EXPECT_EQ(ordered->size(), static_cast<size_t>(keys + 1));
  }
}

TEST(JsonParseTest, InvalidJsonSaysWhere) {
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "{} x", "1e999", "\"\\ud800\""}) {
    auto j = ParseJson<nlohmann::json>(bad);
    ASSERT_FALSE(j.ok()) << bad;
    EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(j.status().message().find("not valid JSON"), std::string::npos) << j.status();
  }
}

TEST(JsonParseTest, DepthIsBoundedAtTheLimit) {
  EXPECT_TRUE(ParseJson<nlohmann::json>(Nested(kMaxJsonDepth)).ok());
  EXPECT_TRUE(ParseJson<nlohmann::json>(Nested(kMaxJsonDepth, "[", "]")).ok());
  auto j = ParseJson<nlohmann::json>(Nested(kMaxJsonDepth + 1, "[", "]"));
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(j.status().message().find("nested deeper than 128 levels"), std::string::npos) << j.status();
  EXPECT_FALSE(ParseJson<nlohmann::json>(Nested(5), 4).ok());
  EXPECT_TRUE(ParseJson<nlohmann::json>(Nested(4), 4).ok());
}

// The attacks: 50,000 levels (nlohmann builds them, then every copy or dump
// recurses 50,000 deep) and 200,000 keys in one ordered object (nlohmann's
// ordered insert is quadratic: minutes). Both must be linear, well under a
// second even in a sanitizer build.
TEST(JsonParseTest, HostileDocumentsCostLinearTime) {
  const std::string deep = Nested(50000);
  const std::string wide = Wide(200000);
  absl::Time start = absl::Now();
  auto d = ParseJson<nlohmann::ordered_json>(deep);
  EXPECT_FALSE(d.ok());
  auto w = ParseJson<nlohmann::ordered_json>(wide);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->size(), 200001u);
  EXPECT_EQ((*w)["k199999"], 199999);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

}  // namespace
}  // namespace llmesh
