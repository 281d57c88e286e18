// Stop strings matched on detokenized text as it streams, across token
// boundaries. Text that could be the start of a stop string is held back until
// it is known not to be; the stop string itself (and anything after it) is
// never emitted.
//
//   StopMatcher m({"\n\n", "END"});
//   auto r = m.Push("Hello\n");   // r.text == "Hello", "\n" held back
//   r = m.Push("\nmore");         // r.text == "", r.stopped == true
//   std::string rest = m.Flush(); // end of generation: release held text
#pragma once

#include <string>
#include <vector>

namespace llmesh::gateway {

class StopMatcher {
 public:
  struct Result {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string matched; emit `text`, then nothing more
  };

  explicit StopMatcher(std::vector<std::string> stops);

  Result Push(const std::string& delta);
  // The generation ended without a stop: whatever was held back.
  std::string Flush();
  bool stopped() const { return stopped_; }
  bool empty() const { return stops_.empty(); }

 private:
  // Bytes at the end of held_ that are a proper prefix of some stop string.
  size_t PartialSuffixLength() const;

  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

// Cuts `text` to a whole number of UTF-8 characters: the length of the longest
// prefix that does not end inside a multi-byte sequence.
size_t Utf8CompletePrefix(const std::string& text);

}  // namespace llmesh::gateway
