#include "llmesh/rag/chunker.h"

#include <algorithm>
#include <cctype>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace llmesh::rag {
namespace {

struct Unit {
  std::string text;
  int32_t tokens = 0;
  bool paragraph_end = false;
};

bool IsCloser(char c) { return c == '"' || c == '\'' || c == ')' || c == ']'; }

// Cuts `text` into `n` pieces of about equal word counts (n >= 2).
std::vector<std::string> SplitWords(std::string_view text, size_t n) {
  std::vector<std::string_view> words;
  for (size_t i = 0; i < text.size();) {
    size_t j = text.find(' ', i);
    if (j == std::string_view::npos) j = text.size();
    if (j > i) words.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  std::vector<std::string> out;
  if (words.size() <= 1) {  // one enormous word: cut by bytes at UTF-8 boundaries
    size_t step = std::max<size_t>(1, text.size() / n);
    for (size_t i = 0; i < text.size();) {
      size_t end = std::min(text.size(), i + step);
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
      out.emplace_back(text.substr(i, end - i));
      i = end;
    }
    return out;
  }
  n = std::min(n, words.size());
  size_t per = (words.size() + n - 1) / n;
  for (size_t i = 0; i < words.size(); i += per) {
    std::string part;
    for (size_t w = i; w < std::min(words.size(), i + per); ++w) {
      if (!part.empty()) part.push_back(' ');
      part.append(words[w]);
    }
    out.push_back(std::move(part));
  }
  return out;
}

}  // namespace

std::vector<std::string> SplitSentences(std::string_view p) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c != '.' && c != '!' && c != '?') continue;
    size_t j = i + 1;
    while (j < p.size() && (p[j] == '.' || p[j] == '!' || p[j] == '?' || IsCloser(p[j]))) ++j;
    if (j >= p.size() || p[j] != ' ') continue;
    size_t k = j;
    while (k < p.size() && p[k] == ' ') ++k;
    if (k >= p.size() || std::islower(static_cast<unsigned char>(p[k]))) continue;
    out.emplace_back(p.substr(start, j - start));
    start = k;
    i = k - 1;
  }
  if (start < p.size()) out.emplace_back(p.substr(start));
  return out;
}

absl::StatusOr<ChunkingOptions> ValidateChunking(ChunkingOptions o) {
  if (o.chunk_tokens == 0) o.chunk_tokens = 256;
  if (o.overlap_tokens == 0) o.overlap_tokens = std::min(32, o.chunk_tokens / 8);
  if (o.chunk_tokens < 16 || o.chunk_tokens > 8192)
    return absl::InvalidArgumentError(absl::StrCat("chunk_tokens must be in 16..8192, got ", o.chunk_tokens));
  if (o.overlap_tokens < 0 || o.overlap_tokens * 2 > o.chunk_tokens)
    return absl::InvalidArgumentError(
        absl::StrCat("overlap_tokens must be in 0..chunk_tokens/2, got ", o.overlap_tokens));
  return o;
}

Chunker::Chunker(ChunkingOptions options) : options_(options) {}

absl::StatusOr<std::vector<Chunk>> Chunker::Split(const std::vector<Section>& sections, TokenCounter& counter,
                                                  const std::string& model) const {
  std::vector<Chunk> chunks;
  for (const Section& section : sections) {
    // Sentences, and the heading, counted in one call.
    std::vector<Unit> units;
    for (const auto& para : section.paragraphs) {
      for (auto& s : SplitSentences(para)) units.push_back({std::move(s), 0, false});
      if (!units.empty()) units.back().paragraph_end = true;
    }
    if (units.empty()) continue;
    std::vector<std::string> texts;
    for (const auto& u : units) texts.push_back(u.text);
    if (!section.heading.empty()) texts.push_back(section.heading);
    auto counts = counter.Count(model, texts);
    if (!counts.ok()) return counts.status();
    if (counts->size() != texts.size()) return absl::InternalError("token counter returned the wrong number of counts");
    for (size_t i = 0; i < units.size(); ++i) units[i].tokens = std::max(1, (*counts)[i]);
    int32_t heading_tokens = section.heading.empty() ? 0 : (*counts)[units.size()] + 1;
    const int32_t budget = std::max(8, options_.chunk_tokens - heading_tokens);

    // Sentences longer than a chunk: cut at words, recount, a few rounds at most.
    for (int round = 0; round < 4; ++round) {
      std::vector<Unit> next;
      std::vector<std::string> to_count;
      std::vector<size_t> counted_at;
      for (auto& u : units) {
        if (u.tokens <= budget) {
          next.push_back(std::move(u));
          continue;
        }
        size_t n = static_cast<size_t>((u.tokens * 11 / 10) / budget + 1);
        auto parts = SplitWords(u.text, std::max<size_t>(2, n));
        for (size_t k = 0; k < parts.size(); ++k) {
          counted_at.push_back(next.size());
          to_count.push_back(parts[k]);
          next.push_back({std::move(parts[k]), 0, u.paragraph_end && k + 1 == parts.size()});
        }
      }
      units = std::move(next);
      if (to_count.empty()) break;
      auto c = counter.Count(model, to_count);
      if (!c.ok()) return c.status();
      if (c->size() != to_count.size()) return absl::InternalError("token counter returned the wrong number of counts");
      for (size_t k = 0; k < counted_at.size(); ++k) units[counted_at[k]].tokens = std::max(1, (*c)[k]);
    }

    // Greedy packing.
    const size_t n = units.size();
    size_t start = 0;
    while (start < n) {
      size_t end = start;
      int32_t sum = 0;
      while (end < n && (end == start || sum + units[end].tokens <= budget)) sum += units[end++].tokens;
      if (end < n) {  // prefer the last paragraph boundary that keeps the chunk half full
        int32_t acc = 0;
        size_t best = 0;
        for (size_t j = start; j + 1 < end; ++j) {
          acc += units[j].tokens;
          if (units[j].paragraph_end && acc * 2 >= budget) best = j + 1;
        }
        if (best > start) end = best;
      }
      std::string text = section.heading.empty() ? "" : section.heading + "\n\n";
      int32_t tokens = heading_tokens;
      for (size_t j = start; j < end; ++j) {
        text += units[j].text;
        tokens += units[j].tokens;
        if (j + 1 < end) text += units[j].paragraph_end ? "\n\n" : " ";
      }
      chunks.push_back({std::move(text), tokens});
      if (end >= n) break;
      // Overlap: the next chunk starts with this one's last sentences.
      size_t s = end;
      int32_t acc = 0;
      while (s - 1 > start && acc + units[s - 1].tokens <= options_.overlap_tokens) acc += units[--s].tokens;
      start = s;
    }
  }
  return chunks;
}

}  // namespace llmesh::rag
