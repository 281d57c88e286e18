// Unicode helpers shared by the tokenizers: strict UTF-8 decoding, the
// character classes llama.cpp's tokenizers test (via utf8proc, no tables of
// our own), GPT-2's byte<->unicode mapping and an incremental UTF-8 sanitizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace llmesh::tokenizer::unicode {

// Length of the UTF-8 sequence introduced by `lead`, as llama.cpp's
// unicode_len_utf8 computes it (1 for continuation/invalid bytes).
inline size_t Utf8SeqLen(uint8_t lead) {
  static constexpr size_t kLookup[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLookup[lead >> 4];
}

// Offset of the first byte that is not part of well-formed UTF-8 (no
// overlongs, surrogates or code points past U+10FFFF), or npos.
size_t FindInvalidUtf8(std::string_view s);

// Decodes one code point of already-validated UTF-8 at s[*pos], advancing *pos.
uint32_t DecodeValid(std::string_view s, size_t* pos);

void AppendUtf8(uint32_t cpt, std::string* out);

// Unicode White_Space property (the set llama.cpp's unicode_cpt_flags uses).
bool IsWhitespace(uint32_t cpt);

// General category predicates (utf8proc).
bool IsPunctuation(uint32_t cpt);  // P*
bool IsSymbol(uint32_t cpt);       // S*
bool IsControl(uint32_t cpt);      // Cc Cf Co Cs (llama.cpp's CONTROL flag)
bool IsAccentMark(uint32_t cpt);   // M*
uint32_t ToLower(uint32_t cpt);    // simple lowercase mapping
// First code point of the canonical decomposition: what llama.cpp's
// unicode_cpts_normalize_nfd maps each code point to (accent is dropped).
uint32_t NfdFirst(uint32_t cpt);

// GPT-2 byte-level BPE: every byte maps to one printable code point.
// Appends the UTF-8 of the mapped code point for each byte of `bytes`.
void ByteEncode(std::string_view bytes, std::string* out);
// Inverse for one code point; returns -1 if `cpt` is not in the mapping.
int ByteDecode(uint32_t cpt);

// Incremental UTF-8 repair: passes well-formed sequences through, holds an
// incomplete trailing sequence until it completes, and replaces each maximal
// ill-formed subpart with U+FFFD (the WHATWG / Unicode "best practice"), so
// feeding a string in any split yields the same output as feeding it whole.
class Utf8Sanitizer {
 public:
  void Feed(std::string_view in, std::string* out);
  void Finish(std::string* out);  // an incomplete tail becomes one U+FFFD
  void Reset() { need_ = 0; seen_ = 0; pending_len_ = 0; }

 private:
  void EmitReplacement(std::string* out);
  int need_ = 0;   // continuation bytes still expected
  int seen_ = 0;   // continuation bytes seen so far
  uint8_t lower_ = 0x80, upper_ = 0xBF;  // bounds for the next continuation byte
  char pending_[4];
  int pending_len_ = 0;
};

}  // namespace llmesh::tokenizer::unicode
