#include "mux_buffer.h"

namespace llmesh::engine {

v1::GenerateResponse& MuxBuffer::Open(uint64_t id, int32_t index) {
  auto [it, added] = open_.try_emplace({id, index}, pending_.events_size());
  if (!added) return *pending_.mutable_events(it->second)->mutable_response();
  v1::GenerateMuxEvent* e = pending_.add_events();
  e->set_id(id);
  v1::GenerateResponse* r = e->mutable_response();
  r->set_index(index);
  return *r;
}

void MuxBuffer::Close(uint64_t id, int32_t index) { open_.erase({id, index}); }

void MuxBuffer::Done(uint64_t id, const absl::Status& status) {
  int n = pending_.events_size();
  v1::GenerateMuxEvent* e = nullptr;
  if (n > 0 && pending_.events(n - 1).id() == id && !pending_.events(n - 1).done()) e = pending_.mutable_events(n - 1);
  if (!e) {
    e = pending_.add_events();
    e->set_id(id);
  }
  e->set_done(true);
  e->set_status_code(static_cast<int32_t>(status.code()));
  e->set_status_message(std::string(status.message()));
  // Its completions are all closed by now; drop any left so a reused id starts afresh.
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->first.first == id) open_.erase(it++);
    else ++it;
  }
}

void MuxBuffer::TakeInto(v1::GenerateMuxResponse* out) {
  out->Swap(&pending_);
  pending_.Clear();  // the events written last time, kept allocated for reuse
  open_.clear();
}

}  // namespace llmesh::engine
