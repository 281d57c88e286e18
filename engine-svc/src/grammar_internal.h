// Helpers shared by the grammar sources (not part of the public API).
#pragma once

#include <cstdint>

namespace llmesh::engine::grammar_internal {

// Incremental, strict UTF-8 decoding: rejects overlong forms, surrogates and
// code points past U+10FFFF, so text the grammar accepts is always valid UTF-8.
struct Utf8State {
  uint32_t cp = 0;   // bits so far
  uint8_t left = 0;  // continuation bytes still to come
  uint8_t len = 0;   // length of the sequence being decoded

  // -1: invalid byte here; 0: need more bytes; 1: `cp` is complete.
  int Step(uint8_t b) {
    if (left == 0) {
      if (b < 0x80) {
        cp = b;
        len = 1;
        return 1;
      }
      if (b >= 0xC2 && b <= 0xDF) {
        cp = b & 0x1Fu, left = 1, len = 2;
      } else if ((b & 0xF0) == 0xE0) {
        cp = b & 0x0Fu, left = 2, len = 3;
      } else if (b >= 0xF0 && b <= 0xF4) {
        cp = b & 0x07u, left = 3, len = 4;
      } else {
        return -1;
      }
      return 0;
    }
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3Fu);
    --left;
    // Reject early what can never become valid: overlong 3/4-byte forms,
    // surrogates and > U+10FFFF, checked on the first continuation byte.
    if (len - left == 2) {
      if (len == 3 && (cp < 0x20 || (cp >= 0x360 && cp < 0x380))) return -1;  // < U+0800, D800..DFFF
      if (len == 4 && (cp < 0x10 || cp > 0x10F)) return -1;                   // < U+10000, > U+10FFFF
    }
    return left == 0 ? 1 : 0;
  }
  // The code points a partial sequence can still become: [lo, hi].
  // Bounded by the smallest code point that needs `len` bytes (shorter
  // forms are overlong) and by U+10FFFF.
  uint32_t lo() const {
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    const uint32_t x = cp << (6 * left);
    return x < kMin[len] ? kMin[len] : x;
  }
  uint32_t hi() const {
    const uint32_t x = (cp << (6 * left)) | ((1u << (6 * left)) - 1);
    return x > 0x10FFFF ? 0x10FFFF : x;
  }
};

}  // namespace llmesh::engine::grammar_internal
