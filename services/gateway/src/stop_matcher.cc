#include "llmesh/gateway/stop_matcher.h"

#include <algorithm>

namespace llmesh::gateway {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

size_t StopMatcher::PartialSuffixLength() const {
  size_t best = 0;
  for (const auto& stop : stops_) {
    // Longest k < |stop| with held_ ending in stop[0..k).
    size_t max_k = std::min(stop.size() - 1, held_.size());
    for (size_t k = max_k; k > best; --k) {
      if (held_.compare(held_.size() - k, k, stop, 0, k) == 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}

StopMatcher::Result StopMatcher::Push(const std::string& delta) {
  Result r;
  if (stopped_) {
    r.stopped = true;
    return r;
  }
  if (stops_.empty()) {
    r.text = delta;
    return r;
  }
  held_ += delta;
  // Earliest full match of any stop string.
  size_t first = std::string::npos;
  for (const auto& stop : stops_) first = std::min(first, held_.find(stop));
  if (first != std::string::npos) {
    r.text = held_.substr(0, first);
    r.stopped = stopped_ = true;
    held_.clear();
    return r;
  }
  size_t keep = PartialSuffixLength();
  size_t emit = held_.size() - keep;
  // Never split a UTF-8 character between the emitted and the held part.
  emit = Utf8CompletePrefix(held_.substr(0, emit));
  r.text = held_.substr(0, emit);
  held_.erase(0, emit);
  return r;
}

std::string StopMatcher::Flush() {
  if (stopped_) return "";
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

size_t Utf8CompletePrefix(const std::string& text) {
  size_t n = text.size();
  // Walk back over at most 3 continuation bytes to the last lead byte.
  size_t i = n;
  int cont = 0;
  while (i > 0 && cont < 4) {
    unsigned char c = static_cast<unsigned char>(text[i - 1]);
    if ((c & 0xC0) != 0x80) break;
    --i;
    ++cont;
  }
  if (i == 0) return cont == 0 ? n : 0;
  unsigned char lead = static_cast<unsigned char>(text[i - 1]);
  size_t need = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
  size_t have = static_cast<size_t>(cont) + 1;
  return have >= need ? n : i - 1;
}

}  // namespace llmesh::gateway
