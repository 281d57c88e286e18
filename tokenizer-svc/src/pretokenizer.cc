#include "pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "unicode.h"

namespace llmesh::tokenizer {
namespace {

// The regex lists, verbatim from llama.cpp's llm_tokenizer_bpe constructor
// (the "adapted" forms where it rewrote (?i:...) for std::regex).
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kPoro = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
constexpr std::string_view kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt4o =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Code points that NFC would rewrite (U+1FBE, U+2126, U+212A, ...) are
// written as \x{} escapes so no editor or tool can silently normalise them.
constexpr std::string_view kDeepseekLlmLetters =
    R"(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\x{1F7D}ᾀ-ᾴᾶ-ᾼ\x{1FBE}ῂ-ῄῆ-ῌῐ-\x{1FD3}ῖ-\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\x{2126}ℨ\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)";
constexpr std::string_view kDeepseekCjk = R"([一-龥ࠀ-一가-퟿]+)";

std::vector<PreTypeInfo> BuildPreTypes() {
  std::vector<PreTypeInfo> v;
  auto add = [&](std::string_view name, std::vector<std::string_view> rx, bool clean = true,
                 bool ignore_merges = false, bool add_bos = false) {
    v.push_back(PreTypeInfo{name, std::move(rx), clean, ignore_merges, add_bos});
  };
  const std::vector<std::string_view> def = {
      R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  const std::vector<std::string_view> starcoder = {R"(\p{N})", kGpt2};
  add("default", def);
  for (auto n : {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"}) {
    add(n, {kLlama3}, true, /*ignore_merges=*/true, /*add_bos=*/true);
  }
  add("dbrx", {kLlama3});
  add("smaug-bpe", {kLlama3});
  add("deepseek-llm", {"[\r\n]", kDeepseekLlmLetters, R"(\s?[!-/:-~！-／：-～‘-‟　-。]+)", R"(\s+$)",
                       kDeepseekCjk, R"(\p{N}+)"}, false);
  add("deepseek-coder", {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"}, false);
  add("falcon", {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"});
  for (auto n : {"starcoder", "refact", "codeshell", "exaone", "minerva-7b"}) add(n, starcoder);
  for (auto n : {"command-r", "smollm"}) add(n, starcoder, false);
  for (auto n : {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                 "a.x-4.0", "mellum", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo",
                 "jais", "trillion",
                 // Not a llama.cpp name: NeoX-family tokenizers (mpt, olmo...)
                 // use the GPT-2 ByteLevel regex, which is what we map it to.
                 "gpt-neox"}) {
    add(n, {kGpt2});
  }
  for (auto n : {"qwen2", "deepseek-r1-qwen", "megrez"}) add(n, {kQwen2}, false);
  add("stablelm2", {kQwen2});
  add("poro-chat", {kPoro}, false);
  add("bloom", {kPoro});
  add("gpt3-finnish", {kPoro});
  add("chatglm-bpe", {kLlama3});
  add("glm4", {kLlama3});
  add("viking", {kPoro, R"(\p{N})"}, false);
  add("tekken", {kTekken}, false, true, true);
  add("gpt-4o", {kGpt4o}, false);
  add("llama4", {kGpt4o}, false);
  return v;
}

const std::vector<PreTypeInfo>& PreTypes() {
  static const std::vector<PreTypeInfo> v = BuildPreTypes();
  return v;
}

// The White_Space set, as PCRE2 class contents.
constexpr std::string_view kWs =
    R"(\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

}  // namespace

const PreTypeInfo* FindPreType(std::string_view name) {
  for (const auto& p : PreTypes()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::vector<std::string_view> KnownPreTypeNames() {
  std::vector<std::string_view> names;
  for (const auto& p : PreTypes()) names.push_back(p.name);
  return names;
}

std::string ExpandWhitespaceClasses(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      if (n == 's') {
        if (in_class) {
          out.append(kWs);
        } else {
          out += "["; out += kWs; out += "]";
        }
        ++i;
        continue;
      }
      if (n == 'S' && !in_class) {
        out += "[^"; out += kWs; out += "]";
        ++i;
        continue;
      }
      out.push_back(c);
      out.push_back(n);
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' or '^]' right after '[' is literal.
      if (i + 1 < p.size() && p[i + 1] == '^') { out.push_back('^'); ++i; }
      if (i + 1 < p.size() && p[i + 1] == ']') { out.push_back(']'); ++i; }
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

// --- PCRE2 plumbing --------------------------------------------------------

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

namespace {

// Per-thread match state: PCRE2 match data and JIT stack must not be shared
// between concurrent matches, and allocating them per call is wasteful.
struct MatchScratch {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchScratch() {
    md = pcre2_match_data_create(64, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    // Lookahead-heavy patterns (tekken, gpt-4o) recurse per character; the
    // default 32 KiB JIT stack overflows on long words.
    jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (mctx && jit_stack) pcre2_jit_stack_assign(mctx, nullptr, jit_stack);
  }
  ~MatchScratch() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(jit_stack);
  }
};

MatchScratch& Scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

PreTokenizer::~PreTokenizer() = default;

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(const PreTypeInfo& info) {
  std::unique_ptr<PreTokenizer> pt(new PreTokenizer());
  for (const auto rx : info.regexes) {
    const std::string pattern = ExpandWhitespaceClasses(rx);
    int err = 0;
    PCRE2_SIZE err_off = 0;
    auto r = std::make_unique<Regex>();
    // DOLLAR_ENDONLY: std::regex's `$` (deepseek-llm's "\s+$") does not match
    // before a final newline.
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_off, nullptr);
    if (r->code == nullptr) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      return absl::InternalError(absl::StrCat("pre-tokenizer '", std::string(info.name), "': regex /", std::string(rx),
                                              "/ does not compile at ", err_off, ": ",
                                              reinterpret_cast<const char*>(msg.data())));
    }
    // JIT is an optimisation only; the interpreter gives identical results.
    (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
    pt->regexes_.push_back(std::move(r));
  }
  return pt;
}

absl::Status PreTokenizer::Split(std::string_view text, std::vector<size_t>* lengths) const {
  MatchScratch& s = Scratch();
  if (s.md == nullptr || s.mctx == nullptr) return absl::ResourceExhaustedError("pcre2 scratch");
  std::vector<size_t> cur{text.size()}, next;
  const auto* subject_base = reinterpret_cast<PCRE2_SPTR>(text.data());
  for (const auto& rx : regexes_) {
    next.clear();
    next.reserve(cur.size() * 2);
    size_t start = 0;
    for (const size_t len : cur) {
      // Each piece is matched on its own, so lookarounds and `$` stop at its
      // edges exactly as with llama.cpp's per-piece std::regex_iterator.
      const PCRE2_SPTR subject = subject_base + start;
      size_t pos = 0, last_end = 0;
      while (pos < len) {
        const int rc = pcre2_match(rx->code, subject, len, pos, PCRE2_NO_UTF_CHECK, s.md, s.mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          std::array<PCRE2_UCHAR, 256> msg{};
          pcre2_get_error_message(rc, msg.data(), msg.size());
          return absl::ResourceExhaustedError(absl::StrCat(
              "pre-tokenizer regex failed: ", reinterpret_cast<const char*>(msg.data())));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
        const size_t ms = ov[0], me = ov[1];
        if (me == ms) {  // empty match: contributes nothing, step one character
          pos = ms + unicode::Utf8SeqLen(static_cast<uint8_t>(text[start + ms]));
          continue;
        }
        if (ms > last_end) next.push_back(ms - last_end);
        next.push_back(me - ms);
        last_end = pos = me;
      }
      if (last_end < len) next.push_back(len - last_end);
      start += len;
    }
    cur.swap(next);
  }
  for (const size_t len : cur) {
    if (len > 0) lengths->push_back(len);
  }
  return absl::OkStatus();
}

}  // namespace llmesh::tokenizer
