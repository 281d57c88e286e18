#include "wpm.h"

#include <algorithm>

#include "unicode.h"

namespace llmesh::tokenizer {
namespace {

// BERT's _is_chinese_char ranges (0x2B920 start copied from HF's Rust code).
bool IsChineseChar(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace

std::vector<std::string> WpmPreprocess(std::string_view text) {
  std::vector<std::string> words(1);
  for (size_t pos = 0; pos < text.size();) {
    const uint32_t cpt = unicode::NfdFirst(unicode::DecodeValid(text, &pos));
    if (unicode::IsWhitespace(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cpt == 0 || cpt == 0xFFFD || unicode::IsControl(cpt) || unicode::IsAccentMark(cpt)) continue;
    std::string s;
    unicode::AppendUtf8(unicode::ToLower(cpt), &s);
    if (unicode::IsPunctuation(cpt) || (cpt < 0x7F && unicode::IsSymbol(cpt)) || IsChineseChar(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = std::move(s);
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

absl::Status WpmEncode(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out) {
  std::string word1;
  for (const std::string& word : WpmPreprocess(text)) {
    if (word.empty()) continue;
    word1.assign("\xE2\x96\x81");  // phantom space marks a word start
    word1 += word;
    const int n = static_cast<int>(word1.size());
    const size_t mark = out->size();
    for (int i = 0; i < n; ++i) {
      bool match = false;
      for (int j = std::min(n, i + vocab.max_token_len() + 1); j > i; --j) {
        const int32_t id = vocab.TextToToken(std::string_view(word1).substr(i, j - i));
        if (id != kNoToken) {
          out->push_back(id);
          match = true;
          i = j - 1;
          break;
        }
      }
      if (!match) {  // one unmatched position discards the whole word
        out->resize(mark);
        break;
      }
    }
    if (out->size() == mark) {
      if (vocab.unk() == kNoToken) {
        return absl::FailedPreconditionError("word has no WordPiece match and vocabulary has no [UNK]");
      }
      out->push_back(vocab.unk());
    }
  }
  return absl::OkStatus();
}

}  // namespace llmesh::tokenizer
