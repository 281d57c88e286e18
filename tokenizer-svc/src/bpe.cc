#include "bpe.h"

#include <algorithm>
#include <queue>
#include <string>

#include "unicode.h"

namespace llmesh::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  uint32_t start;  // byte offset in the byte-encoded word
  uint32_t n;      // byte length; 0 once merged away
  int32_t id;      // token whose text is this symbol, or -1
};

struct Bigram {
  int32_t rank;
  int left;
  int right;
  uint32_t size;
};

// Lowest rank first; ties go to the leftmost pair (llama.cpp's comparator).
struct BigramGreater {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<BpeEncoder>> BpeEncoder::Create(const Vocab& vocab) {
  const PreTypeInfo* info = FindPreType(vocab.pre());
  if (info == nullptr) return absl::InvalidArgumentError("unknown pre-tokenizer " + vocab.pre());
  std::unique_ptr<BpeEncoder> enc(new BpeEncoder(vocab));
  absl::StatusOr<std::unique_ptr<PreTokenizer>> pre = PreTokenizer::Create(*info);
  if (!pre.ok()) return pre.status();
  enc->pre_ = std::move(*pre);
  for (int b = 0; b < 256; ++b) {
    std::string s;
    const char raw = static_cast<char>(b);
    unicode::ByteEncode(std::string_view(&raw, 1), &s);
    enc->byte_char_id_[b] = vocab.TextToToken(s);
  }
  return enc;
}

absl::Status BpeEncoder::Encode(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<size_t> lengths;
  lengths.reserve(text.size() / 4 + 1);
  if (absl::Status s = pre_->Split(text, &lengths); !s.ok()) return s;
  size_t start = 0;
  for (const size_t len : lengths) {
    EncodeWord(text.substr(start, len), out);
    start += len;
  }
  return absl::OkStatus();
}

void BpeEncoder::EncodeWord(std::string_view raw, std::vector<int32_t>* out) const {
  if (raw.size() == 1) {  // hot path: punctuation, single letters, spaces
    const int32_t id = byte_char_id_[static_cast<uint8_t>(raw[0])];
    if (id >= 0) out->push_back(id);
    return;
  }
  // Per-thread scratch: words are short and this runs once per word.
  thread_local std::string word;
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Bigram> heap;
  word.clear();
  unicode::ByteEncode(raw, &word);

  if (vocab_.ignore_merges()) {
    const int32_t id = vocab_.TextToToken(word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }

  // One symbol per input byte (each byte became one code point).
  symbols.clear();
  uint32_t offs = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(raw[i]);
    const uint32_t n = static_cast<uint32_t>(unicode::Utf8SeqLen(static_cast<uint8_t>(word[offs])));
    const int index = static_cast<int>(i);
    symbols.push_back(Symbol{index - 1, i + 1 == raw.size() ? -1 : index + 1, offs, n, byte_char_id_[b]});
    offs += n;
  }

  heap.clear();
  const std::string_view w(word);
  auto try_add = [&](int left, int right) {
    if (left == -1 || right == -1) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    int32_t rank = vocab_.MergeRank(l.id, r.id);
    if (rank < 0 && (l.id < 0 || r.id < 0) && vocab_.has_text_merges()) {
      rank = vocab_.MergeRankByText(w.substr(l.start, l.n), w.substr(r.start, r.n));
    }
    if (rank < 0) return;
    heap.push_back(Bigram{rank, left, right, l.n + r.n});
    std::push_heap(heap.begin(), heap.end(), BigramGreater{});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BigramGreater{});
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    // Both alive and still adjacent with the same extent <=> same text.
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.id = vocab_.TextToToken(w.substr(l.start, l.n));
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int i = 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      out->push_back(s.id);
      continue;
    }
    // Not a token (merges that produce out-of-vocab strings): llama.cpp looks
    // each byte of the encoded text up as a 1-byte token and drops misses.
    for (const char ch : w.substr(s.start, s.n)) {
      const int32_t id = vocab_.TextToToken(std::string_view(&ch, 1));
      if (id >= 0) out->push_back(id);
    }
  }
}

}  // namespace llmesh::tokenizer
