#include "unicode.h"

#include <array>

#include "utf8proc.h"

namespace llmesh::tokenizer::unicode {

size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // bounds for the second byte
    if (c >= 0xC2 && c <= 0xDF) { len = 2; }
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) { len = 3; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }  // no surrogates
    else if (c >= 0xEE && c <= 0xEF) { len = 3; }
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) { len = 4; }
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else { return i; }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

uint32_t DecodeValid(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + *pos;
  const uint8_t c = p[0];
  if (c < 0x80) { *pos += 1; return c; }
  if (c < 0xE0) { *pos += 2; return ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu); }
  if (c < 0xF0) {
    *pos += 3;
    return ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  }
  *pos += 4;
  return ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
}

void AppendUtf8(uint32_t cpt, std::string* out) {
  if (cpt < 0x80) {
    out->push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

bool IsWhitespace(uint32_t c) {
  // The White_Space property is a fixed list of 25 code points (PropList.txt).
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

static utf8proc_category_t Category(uint32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool IsPunctuation(uint32_t c) {
  const auto cat = Category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool IsSymbol(uint32_t c) {
  const auto cat = Category(c);
  return cat >= UTF8PROC_CATEGORY_SM && cat <= UTF8PROC_CATEGORY_SO;
}

bool IsControl(uint32_t c) {
  const auto cat = Category(c);
  return cat >= UTF8PROC_CATEGORY_CC && cat <= UTF8PROC_CATEGORY_CO;
}

bool IsAccentMark(uint32_t c) {
  const auto cat = Category(c);
  return cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME;
}

uint32_t ToLower(uint32_t c) {
  return static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}

uint32_t NfdFirst(uint32_t c) {
  if (c < 0xC0) return c;  // nothing below U+00C0 decomposes canonically
  utf8proc_int32_t buf[8];
  int last_boundclass = 0;
  const utf8proc_ssize_t n = utf8proc_decompose_char(
      static_cast<utf8proc_int32_t>(c), buf, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
  return n > 0 ? static_cast<uint32_t>(buf[0]) : c;
}

namespace {

// bytes_to_unicode() from GPT-2's encoder.py: printable Latin-1 bytes map to
// themselves, the rest to U+0100 upwards in byte order.
struct ByteTables {
  std::array<uint32_t, 256> byte_to_cpt{};
  std::array<int16_t, 324> cpt_to_byte{};  // every mapped code point is < 0x144
  ByteTables() {
    cpt_to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      byte_to_cpt[b] = printable ? b : next++;
      cpt_to_byte[byte_to_cpt[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& Tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

void ByteEncode(std::string_view bytes, std::string* out) {
  const auto& t = Tables();
  for (const char ch : bytes) AppendUtf8(t.byte_to_cpt[static_cast<uint8_t>(ch)], out);
}

int ByteDecode(uint32_t cpt) {
  const auto& t = Tables();
  return cpt < t.cpt_to_byte.size() ? t.cpt_to_byte[cpt] : -1;
}

// --- Utf8Sanitizer -------------------------------------------------------

void Utf8Sanitizer::EmitReplacement(std::string* out) {
  out->append("\xEF\xBF\xBD");
  need_ = 0;
  seen_ = 0;
  pending_len_ = 0;
}

void Utf8Sanitizer::Feed(std::string_view in, std::string* out) {
  for (size_t i = 0; i < in.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(in[i]);
    if (need_ == 0) {
      if (b < 0x80) { out->push_back(static_cast<char>(b)); continue; }
      lower_ = 0x80;
      upper_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) { need_ = 1; }
      else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower_ = 0xA0;
        if (b == 0xED) upper_ = 0x9F;
        need_ = 2;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower_ = 0x90;
        if (b == 0xF4) upper_ = 0x8F;
        need_ = 3;
      } else {
        out->append("\xEF\xBF\xBD");
        continue;
      }
      seen_ = 0;
      pending_[0] = static_cast<char>(b);
      pending_len_ = 1;
      continue;
    }
    if (b < lower_ || b > upper_) {
      // The pending prefix is a maximal ill-formed subpart; `b` starts afresh.
      EmitReplacement(out);
      --i;
      continue;
    }
    lower_ = 0x80;
    upper_ = 0xBF;
    pending_[pending_len_++] = static_cast<char>(b);
    if (++seen_ == need_) {
      out->append(pending_, pending_len_);
      need_ = 0;
      seen_ = 0;
      pending_len_ = 0;
    }
  }
}

void Utf8Sanitizer::Finish(std::string* out) {
  if (need_ != 0) EmitReplacement(out);
}

}  // namespace llmesh::tokenizer::unicode
