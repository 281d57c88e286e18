// The events waiting to go out on one GenerateMux stream. A token joins the
// open event of its generation and completion, so everything that piles up
// while the previous write is in flight leaves in one message: one event per
// completion with all its new tokens, whatever the number of sequences.
// No gRPC, no locking (the stream holds its mutex around every call).
#pragma once

#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "llmesh/v1/engine.pb.h"

namespace llmesh::engine {

class MuxBuffer {
 public:
  // The event that new tokens (and the finish) of completion `index` of
  // generation `id` go into: the open one, or a new one at the end.
  v1::GenerateResponse& Open(uint64_t id, int32_t index);
  // Completion `index` finished: nothing more goes into its event.
  void Close(uint64_t id, int32_t index);
  // Generation `id` ended with `status`: marks its last event (added when
  // its last one is not the buffer's last), after every other event of it.
  void Done(uint64_t id, const absl::Status& status);

  bool empty() const { return pending_.events_size() == 0; }
  // Moves everything buffered into `out` (replacing what it held), in order, and
  // empties the buffer. Swapping keeps both messages' allocated events for
  // reuse, so a steady stream allocates nothing per token.
  void TakeInto(v1::GenerateMuxResponse* out);

 private:
  v1::GenerateMuxResponse pending_;
  // (id, index) -> position in pending_.events() of its open event.
  absl::flat_hash_map<std::pair<uint64_t, int32_t>, int> open_;
};

}  // namespace llmesh::engine
