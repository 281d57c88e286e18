// llama.cpp's decode-time clean-up for BPE/WordPiece vocabularies
// (clean_spaces in llama_vocab::impl::detokenize): three passes over the text
//   1. drop a space before ? ! . ,
//   2. " ' " -> "'"
//   3. drop a space before 's 'm 're 've
// written as a streaming filter, so that a StreamingDetokenizer fed one token
// at a time produces exactly what one-shot decoding of the whole text does.
// Each pass holds back only the few characters its decision still depends on.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llmesh::tokenizer {

class CleanSpacesFilter {
 public:
  void Feed(std::string_view in, std::string* out);
  void Finish(std::string* out);
  void Reset() { *this = CleanSpacesFilter(); }

 private:
  // A pass reads text `t` left to right and writes to `o`; it may take back
  // only the last character it wrote, and only if that is a space.
  struct Pass {
    std::string t;       // unprocessed input; t[0] is the previous char when started
    size_t i = 0;        // next index of t to process
    bool started = false;
    std::string o;       // written, not yet forwarded
    void Forward(std::string* next, bool all);
  };
  void Pass1(char c, std::string* out);
  void RunPass2(bool finishing);
  void RunPass3(bool finishing, std::string* out);

  bool pending_space1_ = false;
  Pass p2_, p3_;
};

}  // namespace llmesh::tokenizer
