#include "llmesh/tokenizer/vocab.h"

#include <algorithm>
#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "pretokenizer.h"
#include "spdlog/spdlog.h"

namespace llmesh::tokenizer {

std::string_view VocabTypeName(VocabType t) {
  switch (t) {
    case VocabType::kSpm: return "llama";
    case VocabType::kBpe: return "gpt2";
    case VocabType::kWpm: return "bert";
  }
  return "?";
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB; -1 for anything else ("<0x-1>", "<0xZZ>", "<0x100>").
int ParseByteToken(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  const int hi = HexDigit(t[3]), lo = HexDigit(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string LenPrefixedKey(std::string_view a, std::string_view b) {
  std::string key;
  const auto n = static_cast<uint32_t>(a.size());
  key.append(reinterpret_cast<const char*>(&n), sizeof(n));
  key.append(a);
  key.append(b);
  return key;
}

bool ContainsAny(std::string_view hay, std::initializer_list<std::string_view> needles) {
  for (auto n : needles) {
    if (hay.find(n) != std::string_view::npos) return true;
  }
  return false;
}

std::string KnownNames() {
  std::string s;
  for (auto n : KnownPreTypeNames()) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s;
}

}  // namespace

int32_t Vocab::MergeRankByText(std::string_view left, std::string_view right) const {
  const int32_t l = TextToToken(left), r = TextToToken(right);
  if (l >= 0 && r >= 0) {
    auto it = merge_by_id_.find(PairKey(l, r));
    if (it != merge_by_id_.end()) return it->second;
  }
  if (merge_by_text_.empty()) return -1;
  auto it = merge_by_text_.find(LenPrefixedKey(left, right));  // owned key
  return it == merge_by_text_.end() ? -1 : it->second;
}

bool Vocab::is_eog(int32_t id) const {
  return std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end();
}

absl::StatusOr<Vocab> Vocab::FromData(VocabData data) {
  Vocab v;
  if (absl::Status s = v.Index(data); !s.ok()) return s;
  return v;
}

absl::Status Vocab::Index(const VocabData& d) {
  const size_t n = d.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) return absl::InvalidArgumentError("vocabulary too large");
  if (!d.scores.empty() && d.scores.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.scores has ", d.scores.size(),
                                                   " entries for ", n, " tokens"));
  }
  if (!d.token_types.empty() && d.token_types.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.token_type has ",
                                                   d.token_types.size(), " entries for ", n, " tokens"));
  }

  // Model type and llama.cpp's per-type defaults.
  int32_t def_bos = kNoToken, def_eos = kNoToken, def_unk = kNoToken, def_sep = kNoToken;
  int32_t def_pad = kNoToken, def_mask = kNoToken;
  const PreTypeInfo* pre = nullptr;
  if (d.model == "llama") {
    type_ = VocabType::kSpm;
    def_bos = 1; def_eos = 2; def_unk = 0;
    add_space_prefix_ = true; add_bos_ = true; clean_spaces_ = false;
    pre_ = "default";
  } else if (d.model == "gpt2") {
    type_ = VocabType::kBpe;
    def_bos = 11; def_eos = 11;
    std::string_view pre_name = d.pre;
    if (pre_name.empty()) {
      spdlog::warn("tokenizer: missing tokenizer.ggml.pre, using 'default' (likely wrong)");
      pre_name = "default";
    }
    pre = FindPreType(pre_name);
    if (pre == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown pre-tokenizer type '", std::string(pre_name), "' (known: ", KnownNames(), ")"));
    }
    pre_ = std::string(pre->name);
    clean_spaces_ = pre->clean_spaces;
    ignore_merges_ = pre->ignore_merges;
    add_bos_ = pre->add_bos;
  } else if (d.model == "bert") {
    type_ = VocabType::kWpm;
    def_bos = 101; def_unk = 100; def_sep = 102; def_pad = 0; def_mask = 103;
    add_bos_ = true; add_sep_ = true; clean_spaces_ = true;
    pre_ = "default";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported tokenizer.ggml.model '", d.model, "' (supported: llama, gpt2, bert)"));
  }
  if (d.add_bos) add_bos_ = *d.add_bos;
  if (d.add_eos) add_eos_ = *d.add_eos;
  if (d.add_sep) add_sep_ = *d.add_sep;
  if (d.add_space_prefix) add_space_prefix_ = *d.add_space_prefix;
  chat_template_ = d.chat_template;

  // Tokens.
  tokens_.resize(n);
  byte_value_.assign(n, -1);
  text_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = tokens_[i];
    t.text = d.tokens[i];
    if (t.text.empty()) t.text = absl::StrCat("[EMPTY_", i, "]");  // as llama.cpp
    t.score = d.scores.empty() ? 0.0f : d.scores[i];
    if (!d.token_types.empty()) {
      const int32_t tt = d.token_types[i];
      if (tt < 0 || tt > static_cast<int32_t>(TokenType::kByte)) {
        return absl::InvalidArgumentError(absl::StrCat("token ", i, " has invalid token_type ", tt));
      }
      t.type = static_cast<TokenType>(tt);
    }
    if (t.type == TokenType::kByte) {
      const int b = ParseByteToken(t.text);
      if (b < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token ", i, " has type BYTE but its text '", t.text, "' is not of the form <0xHH>"));
      }
      byte_value_[i] = static_cast<int16_t>(b);
    }
    text_to_id_[t.text] = static_cast<int32_t>(i);
    max_token_len_ = std::max(max_token_len_, static_cast<int>(t.text.size()));
  }

  // Special ids: an out-of-range value keeps the default, like llama.cpp
  // ("bad special token ... using default id").
  const int32_t n_tok = static_cast<int32_t>(n);
  auto pick = [&](const char* what, const std::optional<int32_t>& given, int32_t def) {
    int32_t id = def;
    if (given.has_value()) {
      if (*given >= 0 && *given < n_tok) {
        id = *given;
      } else if (*given != -1) {  // -1 (0xFFFFFFFF) is the converters' "none"
        spdlog::warn("tokenizer: bad special token {} = {}, using default {}", what, *given, def);
      }
    }
    return id >= 0 && id < n_tok ? id : kNoToken;
  };
  // BERT vocabularies carry [CLS] as cls_token_id; it is what WPM prepends.
  std::optional<int32_t> bos_given = d.bos;
  if (type_ == VocabType::kWpm && !bos_given && d.cls) bos_given = d.cls;
  bos_ = pick("bos", bos_given, def_bos);
  eos_ = pick("eos", d.eos, def_eos);
  eot_ = pick("eot", d.eot, kNoToken);
  unk_ = pick("unk", d.unk, def_unk);
  sep_ = pick("sep", d.sep, def_sep);
  pad_ = pick("pad", d.pad, def_pad);
  mask_ = pick("mask", d.mask, def_mask);
  if (add_bos_ && bos_ == kNoToken) {
    return absl::InvalidArgumentError("add_bos_token is true but there is no valid BOS token");
  }
  if (add_eos_ && eos_ == kNoToken) {
    return absl::InvalidArgumentError("add_eos_token is true but there is no valid EOS token");
  }
  if (type_ == VocabType::kWpm && sep_ == kNoToken && add_sep_) {
    return absl::InvalidArgumentError("WordPiece vocabulary has no valid [SEP] token");
  }

  // SPM byte fallback table.
  byte_to_token_.assign(256, kNoToken);
  for (int b = 0; b < 256; ++b) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    const char buf[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    int32_t id = TextToToken(std::string_view(buf, 6));
    const char raw = static_cast<char>(b);
    if (id == kNoToken) id = TextToToken(std::string_view(&raw, 1));
    byte_to_token_[b] = id == kNoToken ? unk_ : id;
  }

  // BPE merges: rank = position; the first occurrence of a pair wins.
  for (size_t r = 0; r < d.merges.size(); ++r) {
    const std::string_view m = d.merges[r];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string_view::npos) continue;  // llama.cpp keeps ("","") which never matches
    const std::string_view a = m.substr(0, sp), b = m.substr(sp + 1);
    const int32_t ia = TextToToken(a), ib = TextToToken(b);
    if (ia >= 0 && ib >= 0) {
      merge_by_id_.try_emplace(PairKey(ia, ib), static_cast<int32_t>(r));
    } else {
      merge_by_text_.try_emplace(LenPrefixedKey(a, b), static_cast<int32_t>(r));
    }
  }
  if (type_ == VocabType::kBpe && d.merges.empty()) {
    return absl::InvalidArgumentError("gpt2 vocabulary has no tokenizer.ggml.merges");
  }

  // Attributes by model name, as llama.cpp does.
  std::string lname = d.name;
  std::transform(lname.begin(), lname.end(), lname.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });

  // Special tokens matched in raw text: control, user-defined and unknown.
  for (int32_t id = 0; id < n_tok; ++id) {
    const TokenType tt = tokens_[id].type;
    if (tt == TokenType::kControl || tt == TokenType::kUserDefined || tt == TokenType::kUnknown) {
      special_tokens_.push_back(id);
    }
  }
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(), [&](int32_t a, int32_t b) {
    return tokens_[a].text.size() > tokens_[b].text.size();
  });
  if (ContainsAny(pre_, {"jina-v2-de", "jina-v2-es", "jina-v2-code"})) {
    if (int32_t id = TextToToken("<mask>"); id >= 0) tokens_[id].attr |= kAttrLstrip;
  } else if (ContainsAny(lname, {"phi-3", "phi3"})) {
    for (int32_t id : special_tokens_) tokens_[id].attr |= kAttrRstrip;
    if (int32_t id = TextToToken("</s>"); id >= 0) tokens_[id].attr |= kAttrRstrip;
    for (auto t : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (int32_t id = TextToToken(t); id >= 0) tokens_[id].attr &= ~kAttrRstrip;
    }
  }

  // End-of-generation set: eos, eot and the usual end-of-turn texts.
  static constexpr std::string_view kEotTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
      "<|end_of_text|>", "<EOT>", "_<EOT>", "<|eom_id|>"};
  if (eot_ == kNoToken) {
    for (auto t : kEotTexts) {
      if (t == "<|eom_id|>") continue;
      if (int32_t id = TextToToken(t); id >= 0) { eot_ = id; break; }
    }
  }
  auto add_eog = [&](int32_t id) {
    if (id >= 0 && !is_eog(id)) eog_ids_.push_back(id);
  };
  add_eog(eos_);
  add_eog(eot_);
  for (auto t : kEotTexts) add_eog(TextToToken(t));
  return absl::OkStatus();
}

}  // namespace llmesh::tokenizer
