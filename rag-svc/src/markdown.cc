#include "llmesh/rag/markdown.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace llmesh::rag {
namespace {

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// Collapses runs of whitespace to one space and trims.
std::string Normalise(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    if (IsSpace(c)) {
      space = !out.empty();
    } else {
      if (space) out.push_back(' ');
      space = false;
      out.push_back(c);
    }
  }
  return out;
}

std::string_view TrimLeft(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// "#..# Title #" -> level and title; level 0 when not an ATX heading.
int AtxHeading(std::string_view line, std::string* title) {
  std::string_view s = TrimLeft(line);
  if (line.size() - s.size() > 3) return 0;
  int level = 0;
  while (level < static_cast<int>(s.size()) && s[static_cast<size_t>(level)] == '#') ++level;
  if (level == 0 || level > 6) return 0;
  std::string_view rest = s.substr(static_cast<size_t>(level));
  if (!rest.empty() && rest[0] != ' ' && rest[0] != '\t') return 0;
  std::string t(absl::StripAsciiWhitespace(Absl(rest)));
  while (!t.empty() && t.back() == '#') t.pop_back();
  *title = Normalise(StripInlineMarkdown(t));
  return level;
}

// A line made only of `c` (at least 3, spaces allowed): setext underline / rule.
bool IsRuleOf(std::string_view line, char c) {
  int n = 0;
  for (char ch : line) {
    if (ch == c) ++n;
    else if (ch != ' ' && ch != '\t' && ch != '\r') return false;
  }
  return n >= 3 || (c == '=' && n >= 1);
}

bool IsFence(std::string_view line) {
  std::string_view s = TrimLeft(line);
  return s.substr(0, 3) == "```" || s.substr(0, 3) == "~~~";
}

// Strips a list or quote marker; sets *item when the line starts a list item.
std::string_view StripBlockMarkers(std::string_view line, bool* item) {
  std::string_view s = TrimLeft(line);
  while (!s.empty() && s[0] == '>') s = TrimLeft(s.substr(1));
  *item = false;
  if (s.size() >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && (s[1] == ' ' || s[1] == '\t')) {
    *item = true;
    return TrimLeft(s.substr(2));
  }
  size_t d = 0;
  while (d < s.size() && d < 9 && std::isdigit(static_cast<unsigned char>(s[d]))) ++d;
  if (d > 0 && d + 1 < s.size() && (s[d] == '.' || s[d] == ')') && (s[d + 1] == ' ' || s[d + 1] == '\t')) {
    *item = true;
    return TrimLeft(s.substr(d + 2));
  }
  return s;
}

bool IsTableSeparator(std::string_view line) {
  bool pipe = false, dash = false;
  for (char c : line) {
    if (c == '|') pipe = true;
    else if (c == '-') dash = true;
    else if (c != ':' && c != ' ' && c != '\t' && c != '\r') return false;
  }
  return pipe && dash;
}

}  // namespace

std::string StripInlineMarkdown(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    // ![alt](url) and [text](url): keep alt/text.
    if ((c == '[' || (c == '!' && i + 1 < s.size() && s[i + 1] == '['))) {
      size_t open = c == '!' ? i + 1 : i;
      size_t close = s.find(']', open + 1);
      if (close != std::string_view::npos && close + 1 < s.size() && s[close + 1] == '(') {
        size_t end = s.find(')', close + 2);
        if (end != std::string_view::npos) {
          out += StripInlineMarkdown(s.substr(open + 1, close - open - 1));
          i = end + 1;
          continue;
        }
      }
    }
    // <tag ...> and </tag>: dropped; <http://x>: the URL.
    if (c == '<') {
      size_t end = s.find('>', i + 1);
      if (end != std::string_view::npos && end > i + 1) {
        std::string_view inner = s.substr(i + 1, end - i - 1);
        bool tag = std::isalpha(static_cast<unsigned char>(inner[0])) || inner[0] == '/' || inner[0] == '!';
        if (inner.find("://") != std::string_view::npos) {
          out += inner;
          i = end + 1;
          continue;
        }
        if (tag) {
          out.push_back(' ');
          i = end + 1;
          continue;
        }
      }
    }
    if (c == '`' || c == '*' || c == '~') {  // code spans, emphasis, strikethrough markers
      ++i;
      continue;
    }
    // '_' as emphasis only at a word edge (keep snake_case).
    if (c == '_') {
      bool prev_word = i > 0 && std::isalnum(static_cast<unsigned char>(s[i - 1]));
      bool next_word = i + 1 < s.size() && std::isalnum(static_cast<unsigned char>(s[i + 1]));
      if (!(prev_word && next_word)) {
        ++i;
        continue;
      }
    }
    if (c == '|') {
      out.push_back(' ');
      ++i;
      continue;
    }
    if (c == '\\' && i + 1 < s.size() && std::ispunct(static_cast<unsigned char>(s[i + 1]))) {
      out.push_back(s[i + 1]);
      i += 2;
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

std::vector<Section> ParseDocument(std::string_view text, DocFormat format) {
  std::vector<Section> sections(1);
  std::vector<std::string> lines = absl::StrSplit(Absl(text), '\n');
  std::string para;  // the paragraph being gathered
  auto flush = [&] {
    std::string p = Normalise(para);
    if (!p.empty()) sections.back().paragraphs.push_back(std::move(p));
    para.clear();
  };

  if (format == DocFormat::kPlain) {
    for (const auto& line : lines) {
      if (absl::StripAsciiWhitespace(line).empty()) flush();
      else para += line + "\n";
    }
    flush();
    if (sections.back().paragraphs.empty()) sections.clear();
    return sections;
  }

  std::vector<std::string> heading_path;  // by level, 1-based
  auto start_section = [&](int level, std::string title) {
    flush();
    heading_path.resize(static_cast<size_t>(level - 1));
    heading_path.push_back(std::move(title));
    std::vector<std::string> parts;
    for (const auto& h : heading_path)
      if (!h.empty()) parts.push_back(h);
    if (sections.back().paragraphs.empty()) sections.pop_back();  // a heading with no body
    sections.push_back({absl::StrJoin(parts, " / "), {}});
  };

  bool in_fence = false;
  std::string fence;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (in_fence) {
      if (IsFence(line)) {
        in_fence = false;
        std::string code(absl::StripAsciiWhitespace(fence));
        if (!code.empty()) sections.back().paragraphs.push_back(std::move(code));
        fence.clear();
      } else {
        fence.append(line).push_back('\n');
      }
      continue;
    }
    if (IsFence(line)) {
      flush();
      in_fence = true;
      continue;
    }
    std::string title;
    if (int level = AtxHeading(line, &title); level > 0) {
      start_section(level, std::move(title));
      continue;
    }
    if (absl::StripAsciiWhitespace(Absl(line)).empty()) {
      flush();
      continue;
    }
    // Setext: "Title\n=====" (level 1) or "Title\n-----" (level 2) for a one-line paragraph.
    if (i + 1 < lines.size() && para.empty()) {
      std::string_view next = lines[i + 1];
      bool h1 = IsRuleOf(next, '='), h2 = IsRuleOf(next, '-');
      if ((h1 || h2) && !IsRuleOf(line, '-') && !IsRuleOf(line, '*')) {
        start_section(h1 ? 1 : 2, Normalise(StripInlineMarkdown(line)));
        ++i;
        continue;
      }
    }
    if (IsRuleOf(line, '-') || IsRuleOf(line, '*') || IsRuleOf(line, '_') || IsTableSeparator(line)) {
      flush();
      continue;
    }
    bool item = false;
    std::string_view body = StripBlockMarkers(line, &item);
    if (item) flush();
    para += StripInlineMarkdown(body);
    para.push_back('\n');
  }
  if (in_fence) {  // unterminated fence: keep its text
    std::string code(absl::StripAsciiWhitespace(fence));
    if (!code.empty()) sections.back().paragraphs.push_back(std::move(code));
  }
  flush();
  std::vector<Section> out;
  for (auto& s : sections)
    if (!s.paragraphs.empty()) out.push_back(std::move(s));
  return out;
}

}  // namespace llmesh::rag
