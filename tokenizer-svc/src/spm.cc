#include "spm.h"

#include <queue>

#include "absl/strings/str_format.h"
#include "unicode.h"

namespace llmesh::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  uint32_t start;  // byte offset in the text
  uint32_t n;      // byte length; 0 once merged into its left neighbour
};

struct Bigram {
  float score;
  int left;
  int right;
  uint32_t size;
};

// Highest score first; ties go to the leftmost pair (llama.cpp's comparator).
struct BigramLess {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  }
};

}  // namespace

absl::Status SpmEncode(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out) {
  if (text.empty()) return absl::OkStatus();
  if (text.size() > UINT32_MAX) return absl::InvalidArgumentError("text too long");

  // One symbol per UTF-8 character.
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offs = 0; offs < text.size();) {
    const size_t len = std::min(unicode::Utf8SeqLen(static_cast<uint8_t>(text[offs])), text.size() - offs);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back(Symbol{index - 1, offs + len == text.size() ? -1 : index + 1,
                             static_cast<uint32_t>(offs), static_cast<uint32_t>(len)});
    offs += len;
  }

  std::vector<Bigram> storage;
  storage.reserve(symbols.size());
  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue(BigramLess{}, std::move(storage));
  auto try_add = [&](int left, int right) {
    if (left == -1 || right == -1) return;
    const uint32_t size = symbols[left].n + symbols[right].n;
    const int32_t id = vocab.TextToToken(text.substr(symbols[left].start, size));
    if (id == kNoToken) return;
    queue.push(Bigram{vocab.token(id).score, left, right, size});
  };

  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    // Stale: one side was merged away or grew since the pair was queued.
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  // Every merged symbol is a token by construction; a symbol that is not is a
  // single character missing from the vocabulary: fall back to its bytes.
  for (int i = 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    const std::string_view piece = text.substr(s.start, s.n);
    const int32_t id = vocab.TextToToken(piece);
    if (id != kNoToken) {
      out->push_back(id);
      continue;
    }
    for (const char ch : piece) {
      const int32_t bid = vocab.ByteToken(static_cast<uint8_t>(ch));
      if (bid == kNoToken) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "vocabulary has no byte-fallback token <0x%02X> and no <unk>", static_cast<uint8_t>(ch)));
      }
      out->push_back(bid);
    }
  }
  return absl::OkStatus();
}

}  // namespace llmesh::tokenizer
