#include "special_tokens.h"

namespace llmesh::tokenizer {
namespace {

// C isspace() in the "C" locale, which llama.cpp uses for LSTRIP/RSTRIP.
bool IsCSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace

std::vector<Fragment> PartitionSpecial(const Vocab& vocab, std::string_view text, bool parse_special) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back(Fragment{kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (const int32_t id : vocab.special_tokens()) {
    const TokenData& td = vocab.token(id);
    if (!parse_special && (td.type == TokenType::kControl || td.type == TokenType::kUnknown)) continue;
    const std::string_view special = td.text;
    // Cheap pre-check so that most tokens cost one search per fragment and no copy.
    bool any = false;
    for (const Fragment& f : frags) {
      if (f.token == kNoToken && text.substr(f.offset, f.length).find(special) != std::string_view::npos) {
        any = true;
        break;
      }
    }
    if (!any) continue;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t base = f.offset, len = f.length;
      while (len > 0) {
        const size_t pos = text.substr(0, base + len).find(special, base);
        if (pos == std::string_view::npos) break;
        if (pos > base) {
          size_t left_len = pos - base;
          if (td.attr & kAttrLstrip) {
            while (left_len > 0 && IsCSpace(text[base + left_len - 1])) --left_len;
          }
          if (left_len > 0) next.push_back(Fragment{kNoToken, base, left_len});
        }
        next.push_back(Fragment{id, 0, 0});
        size_t right = pos + special.size();
        size_t right_len = base + len - right;
        if (td.attr & kAttrRstrip) {
          while (right_len > 0 && IsCSpace(text[right])) {
            ++right;
            --right_len;
          }
        }
        base = right;
        len = right_len;
      }
      if (len > 0) next.push_back(Fragment{kNoToken, base, len});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace llmesh::tokenizer
