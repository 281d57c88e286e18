#include "clean_spaces.h"

namespace llmesh::tokenizer {

void CleanSpacesFilter::Pass::Forward(std::string* next, bool all) {
  size_t n = o.size();
  if (!all && n > 0 && o[n - 1] == ' ') --n;  // may still be taken back
  next->append(o, 0, n);
  o.erase(0, n);
  // Keep t[i-1] (the previous character) and everything after it.
  if (i > 1) {
    t.erase(0, i - 1);
    i = 1;
  }
}

// Pass 1 needs one character of lookahead: a space is held until we see
// whether punctuation follows it.
void CleanSpacesFilter::Pass1(char c, std::string* out) {
  if (pending_space1_) {
    pending_space1_ = false;
    if (!(c == '?' || c == '!' || c == '.' || c == ',')) out->push_back(' ');
  }
  if (c == ' ') {
    pending_space1_ = true;
  } else {
    out->push_back(c);
  }
}

// Pass 2: at i >= 1, x == '\'' with spaces on both sides -> drop both spaces.
// The dropped right space is overwritten with '\0' in llama.cpp, so it can't
// serve as the left space of a following quote.
void CleanSpacesFilter::RunPass2(bool finishing) {
  Pass& p = p2_;
  if (!p.started && !p.t.empty()) {
    p.o.push_back(p.t[0]);
    p.i = 1;
    p.started = true;
  }
  while (p.started && p.i < p.t.size()) {
    const bool has_next = p.i + 1 < p.t.size();
    if (!has_next && !finishing) break;  // decision needs t[i+1]
    const char x = p.t[p.i];
    if (x == '\'' && has_next && p.t[p.i - 1] == ' ' && p.t[p.i + 1] == ' ') {
      p.o.pop_back();
      p.t[p.i + 1] = '\0';
      p.o.push_back(x);
      p.i += 2;
    } else {
      p.o.push_back(x);
      p.i += 1;
    }
  }
}

// Pass 3: at i >= 1, " 's" " 'm" " 're" " 've" -> drop the space.
void CleanSpacesFilter::RunPass3(bool finishing, std::string* out) {
  Pass& p = p3_;
  if (!p.started && !p.t.empty()) {
    p.o.push_back(p.t[0]);
    p.i = 1;
    p.started = true;
  }
  while (p.started && p.i < p.t.size()) {
    const size_t n = p.t.size();
    if (!finishing && p.i + 2 >= n) break;  // decision may need t[i+1], t[i+2]
    const char x = p.t[p.i];
    if (p.t[p.i - 1] == ' ' && x == '\'' && p.i + 1 < n) {
      const char x1 = p.t[p.i + 1];
      bool drop = false;
      if (x1 == 's' || x1 == 'm') {
        drop = true;
      } else if (x1 != 't' && x1 != 'd' && p.i + 2 < n) {
        const char x2 = p.t[p.i + 2];
        drop = (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e');
      }
      if (drop) p.o.pop_back();
    }
    p.o.push_back(x);
    p.i += 1;
  }
  p.Forward(out, finishing);
}

void CleanSpacesFilter::Feed(std::string_view in, std::string* out) {
  std::string s1;
  for (const char c : in) Pass1(c, &s1);
  p2_.t += s1;
  RunPass2(false);
  p2_.Forward(&p3_.t, false);
  RunPass3(false, out);
}

void CleanSpacesFilter::Finish(std::string* out) {
  std::string s1;
  if (pending_space1_) {
    pending_space1_ = false;
    s1.push_back(' ');
  }
  p2_.t += s1;
  RunPass2(true);
  p2_.Forward(&p3_.t, true);
  RunPass3(true, out);
}

}  // namespace llmesh::tokenizer
