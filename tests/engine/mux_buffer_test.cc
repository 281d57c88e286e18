// GenerateMux's write buffer (engine-svc/server/mux_buffer.h): tokens join
// their completion's open event, generations keep their order, `done` comes
// last, and a taken buffer starts afresh.
#include "mux_buffer.h"

#include <gtest/gtest.h>

namespace llmesh::engine {
namespace {

std::vector<int32_t> Ids(const v1::GenerateResponse& r) {
  std::vector<int32_t> out;
  for (const auto& t : r.tokens()) out.push_back(t.token_id());
  return out;
}

TEST(MuxBufferTest, TokensOfOneCompletionJoinOneEventAcrossGenerations) {
  MuxBuffer b;
  EXPECT_TRUE(b.empty());
  b.Open(7, 0).add_tokens()->set_token_id(1);
  b.Open(9, 0).add_tokens()->set_token_id(2);
  b.Open(7, 0).add_tokens()->set_token_id(3);
  b.Open(7, 1).add_tokens()->set_token_id(4);
  v1::GenerateMuxResponse out;
  b.TakeInto(&out);
  ASSERT_EQ(out.events_size(), 3);
  EXPECT_EQ(out.events(0).id(), 7u);
  EXPECT_EQ(out.events(0).response().index(), 0);
  EXPECT_EQ(Ids(out.events(0).response()), (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(out.events(1).id(), 9u);
  EXPECT_EQ(Ids(out.events(1).response()), (std::vector<int32_t>{2}));
  EXPECT_EQ(out.events(2).response().index(), 1);
  EXPECT_TRUE(b.empty());
}

TEST(MuxBufferTest, AfterTakeTokensStartANewEvent) {
  MuxBuffer b;
  b.Open(1, 0).add_tokens()->set_token_id(1);
  v1::GenerateMuxResponse first, second;
  b.TakeInto(&first);
  b.Open(1, 0).add_tokens()->set_token_id(2);
  b.TakeInto(&second);
  ASSERT_EQ(second.events_size(), 1);
  EXPECT_EQ(Ids(second.events(0).response()), (std::vector<int32_t>{2}));
  // Reusing `first` as the next target replaces its old events.
  b.Open(1, 0).add_tokens()->set_token_id(3);
  b.TakeInto(&first);
  ASSERT_EQ(first.events_size(), 1);
  EXPECT_EQ(Ids(first.events(0).response()), (std::vector<int32_t>{3}));
}

TEST(MuxBufferTest, DoneMarksTheGenerationsLastEventOrComesAfterOthers) {
  MuxBuffer b;
  v1::GenerateResponse& r = b.Open(5, 0);
  r.add_tokens()->set_token_id(1);
  r.set_finish_reason(v1::FINISH_REASON_LENGTH);
  b.Close(5, 0);
  b.Done(5, absl::OkStatus());  // merges into its finish event
  b.Open(6, 0).add_tokens()->set_token_id(2);
  b.Open(8, 0).set_finish_reason(v1::FINISH_REASON_STOP);
  b.Close(8, 0);
  b.Done(6, absl::InternalError("boom"));  // another generation's event is last: a new one
  v1::GenerateMuxResponse out;
  b.TakeInto(&out);
  ASSERT_EQ(out.events_size(), 4);
  EXPECT_TRUE(out.events(0).done());
  EXPECT_EQ(out.events(0).status_code(), 0);
  EXPECT_EQ(out.events(0).response().finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_FALSE(out.events(1).done());
  EXPECT_EQ(out.events(3).id(), 6u);
  EXPECT_TRUE(out.events(3).done());
  EXPECT_FALSE(out.events(3).has_response());
  EXPECT_EQ(out.events(3).status_code(), static_cast<int>(absl::StatusCode::kInternal));
  EXPECT_EQ(out.events(3).status_message(), "boom");
}

TEST(MuxBufferTest, AClosedCompletionStartsANewEvent) {
  MuxBuffer b;
  b.Open(1, 0).set_finish_reason(v1::FINISH_REASON_STOP);
  b.Close(1, 0);
  b.Open(1, 0);  // not expected from the scheduler, but never merged into a finished event
  v1::GenerateMuxResponse out;
  b.TakeInto(&out);
  EXPECT_EQ(out.events_size(), 2);
}

}  // namespace
}  // namespace llmesh::engine
