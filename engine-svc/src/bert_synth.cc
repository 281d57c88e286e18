#include "llmesh/engine/bert_synth.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "llmesh/engine/hparams.h"
#include "llmesh/gguf/gguf_writer.h"
#include "spdlog/spdlog.h"
#include "synth_gguf.h"
#include "synth_random.h"

namespace llmesh::engine {
namespace {

using gguf::GgmlType;
using internal::HashName;
using internal::NormalRow;
using internal::NormalRows;

// The published configs (config.json) of each model.
const BertSynthShape kShapes[] = {
    {.name = "minilm-l6",  // sentence-transformers/all-MiniLM-L6-v2
     .n_embd = 384,
     .n_layer = 6,
     .n_head = 12,
     .n_ff = 1536,
     .n_ctx = 512},
    {.name = "bge-small",  // BAAI/bge-small-en-v1.5
     .n_embd = 384,
     .n_layer = 12,
     .n_head = 12,
     .n_ff = 1536,
     .n_ctx = 512,
     .pooling = Pooling::kCls},
    {.name = "tiny",  // tests: rows a multiple of 256 so every K-quant applies
     .n_embd = 256,
     .n_layer = 2,
     .n_head = 4,
     .n_ff = 512,
     .n_ctx = 64},
};

// llama.cpp's enum llama_pooling_type.
uint32_t PoolingTypeValue(Pooling p) {
  switch (p) {
    case Pooling::kCls: return 2;
    case Pooling::kLast: return 3;
    case Pooling::kDefault:
    case Pooling::kMean: return 1;
  }
  return 1;
}

// What fills a tensor.
enum class Fill {
  kNormal,      // N(0, 0.02)
  kNormOne,     // LayerNorm weight: 1 + N(0, 0.02) (random), 1 (bag of words)
  kZero,        // zeros
  kWordVector,  // bag of words: N(0, 1) per word, zero for special tokens
};

struct SynthTensor {
  std::string name;
  std::vector<int64_t> dims;  // ne order
  Fill fill;
};

// How many of the most frequent vocabulary entries count as stop words.
constexpr int64_t kStopWords = 100;

// True for a piece that is one character once llama.cpp's word-start mark
// "▁" (U+2581) is stripped: a letter, digit or punctuation mark.
bool IsSingleCharacter(std::string_view piece) {
  constexpr std::string_view kWordStart = "\xE2\x96\x81";
  if (piece.starts_with(kWordStart)) piece.remove_prefix(kWordStart.size());
  if (piece.empty()) return false;
  const auto lead = static_cast<uint8_t>(piece[0]);
  const size_t len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  return piece.size() == len;
}

// The tokens a bag of words gives the zero vector, because they are in
// nearly every text and so say nothing about what it is about:
//  - control tokens ([CLS], [SEP], [PAD], [MASK]; tokenizer.ggml.token_type 3);
//  - single characters (punctuation, digits, letters such as "a");
//  - the kStopWords most frequent words. A WordPiece vocabulary lists its
//    entries by frequency, so these are the kStopWords ids from "the" on
//    (in BERT's vocabulary: the, of, and, in, to, was, he, is, ...; none
//    when the vocabulary has no "the").
// This is the crudest form of the inverse-frequency weighting that trained
// embedders learn (Arora et al.'s SIF, with weights 0 or 1).
std::vector<bool> WordlessTokens(const gguf::GgufFile& vocab, int64_t n_vocab) {
  std::vector<bool> zero(n_vocab, false);
  if (auto types = vocab.GetIntArray("tokenizer.ggml.token_type"); types.ok()) {
    for (int64_t i = 0; i < n_vocab && i < static_cast<int64_t>(types->size()); ++i) {
      zero[i] = (*types)[i] == 3;  // CONTROL
    }
  }
  auto pieces = vocab.GetStringArray("tokenizer.ggml.tokens");
  if (!pieces.ok()) return zero;
  int64_t the = -1;
  for (int64_t i = 0; i < n_vocab && i < static_cast<int64_t>(pieces->size()); ++i) {
    const std::string_view p = (*pieces)[i];
    if (IsSingleCharacter(p)) zero[i] = true;
    if (the < 0 && (p == "\xE2\x96\x81the" || p == "the")) the = i;
  }
  for (int64_t i = the; the >= 0 && i < std::min(n_vocab, the + kStopWords); ++i) zero[i] = true;
  return zero;
}

}  // namespace

absl::StatusOr<BertSynthShape> BertSynthShapeByName(std::string_view name) {
  return internal::ShapeByName<BertSynthShape>(kShapes, name, "bert shape");
}

std::vector<std::string> BertSynthShapeNames() { return internal::ShapeNames<BertSynthShape>(kShapes); }

absl::Status SynthesizeBertModel(const BertSynthOptions& opts, const std::string& out_path) {
  const BertSynthShape& sh = opts.shape;
  if (sh.n_embd <= 0 || sh.n_layer <= 0 || sh.n_head <= 0 || sh.n_ff <= 0 || sh.n_ctx <= 0 ||
      sh.n_token_types <= 0 || sh.n_embd % sh.n_head != 0 || sh.n_layer > kMaxLayers) {
    return absl::InvalidArgumentError(absl::StrCat("inconsistent bert shape '", sh.name, "'"));
  }
  if (auto s = internal::CheckSynthType(opts.type); !s.ok()) return s;
  if (opts.vocab == nullptr) return absl::InvalidArgumentError("bert synth needs a vocabulary");
  auto toks = opts.vocab->GetStringArray("tokenizer.ggml.tokens");
  if (!toks.ok()) return toks.status();
  const int64_t n_vocab = static_cast<int64_t>(toks->size());
  if (n_vocab <= 0) return absl::InvalidArgumentError("the vocabulary has no tokens");
  const bool bow = opts.recipe == BertSynthRecipe::kBagOfWords;

  gguf::GgufWriter w;
  const std::string a = "bert";
  const QuantMix mix{opts.type};
  internal::SetGeneralKeys(w, a, absl::StrCat("synth ", sh.name, bow ? " bag-of-words" : ""), mix);
  w.SetU32(a + ".context_length", static_cast<uint32_t>(sh.n_ctx));
  w.SetU32(a + ".embedding_length", static_cast<uint32_t>(sh.n_embd));
  w.SetU32(a + ".feed_forward_length", static_cast<uint32_t>(sh.n_ff));
  w.SetU32(a + ".block_count", static_cast<uint32_t>(sh.n_layer));
  w.SetU32(a + ".attention.head_count", static_cast<uint32_t>(sh.n_head));
  w.SetF32(a + ".attention.layer_norm_epsilon", sh.norm_eps);
  w.SetBool(a + ".attention.causal", false);
  // A bag of words is an average: only mean pooling keeps its meaning.
  w.SetU32(a + ".pooling_type", PoolingTypeValue(bow ? Pooling::kMean : sh.pooling));
  if (auto s = internal::CopyTokenizerKeys(*opts.vocab, w); !s.ok()) return s;
  if (!w.HasKey("tokenizer.ggml.token_type_count")) {
    w.SetU32("tokenizer.ggml.token_type_count", static_cast<uint32_t>(sh.n_token_types));
  }

  // Tensors in convert_hf_to_gguf's order. In the bag-of-words recipe every
  // sublayer's output is zero, so the residual passes through unchanged.
  const Fill normal = bow ? Fill::kZero : Fill::kNormal;
  const Fill norm_one = Fill::kNormOne;
  std::vector<SynthTensor> ts;
  ts.push_back({"token_embd.weight", {sh.n_embd, n_vocab}, bow ? Fill::kWordVector : Fill::kNormal});
  ts.push_back({"token_types.weight", {sh.n_embd, sh.n_token_types}, normal});
  ts.push_back({"position_embd.weight", {sh.n_embd, sh.n_ctx}, normal});
  ts.push_back({"token_embd_norm.weight", {sh.n_embd}, norm_one});
  ts.push_back({"token_embd_norm.bias", {sh.n_embd}, normal});
  for (int64_t l = 0; l < sh.n_layer; ++l) {
    auto n = [l](const char* s) { return absl::StrCat("blk.", l, ".", s); };
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      ts.push_back({n(absl::StrCat(m, ".weight").c_str()), {sh.n_embd, sh.n_embd}, normal});
      ts.push_back({n(absl::StrCat(m, ".bias").c_str()), {sh.n_embd}, normal});
    }
    ts.push_back({n("attn_output_norm.weight"), {sh.n_embd}, norm_one});
    ts.push_back({n("attn_output_norm.bias"), {sh.n_embd}, normal});
    // The bag of words keeps a random up projection: GELU of it is thrown
    // away by the zero down projection, but the path still runs.
    ts.push_back({n("ffn_up.weight"), {sh.n_embd, sh.n_ff}, Fill::kNormal});
    ts.push_back({n("ffn_up.bias"), {sh.n_ff}, normal});
    ts.push_back({n("ffn_down.weight"), {sh.n_ff, sh.n_embd}, normal});
    ts.push_back({n("ffn_down.bias"), {sh.n_embd}, normal});
    ts.push_back({n("layer_output_norm.weight"), {sh.n_embd}, norm_one});
    ts.push_back({n("layer_output_norm.bias"), {sh.n_embd}, normal});
  }

  const bool float_request = opts.type == GgmlType::kF32 || opts.type == GgmlType::kF16 ||
                             opts.type == GgmlType::kBF16;
  size_t total = 0;
  for (const SynthTensor& t : ts) {
    GgmlType type;
    if (t.name == "position_embd.weight" || t.name == "token_types.weight") {
      // llama-quantize leaves these unquantized; converters write them F16/F32.
      type = float_request ? opts.type : GgmlType::kF16;
    } else {
      // No output matrix: token_embd is treated as one, as llama.cpp does.
      const MixModel model{static_cast<int>(sh.n_layer), 1, 0, /*tied_output=*/true};
      type = ChooseTensorType(mix, model, t.name, static_cast<int>(t.dims.size()), t.dims[0], opts.pure);
    }
    if (auto s = w.DeclareTensor(t.name, type, t.dims); !s.ok()) return s;
    total += w.tensors().back().nbytes;
  }
  spdlog::info("synth bert {}{}: {} tensors, {:.1f} MiB, n_vocab {}", sh.name,
               bow ? " (bag of words)" : "", ts.size(), total / 1048576.0, n_vocab);

  const std::vector<bool> wordless = bow ? WordlessTokens(*opts.vocab, n_vocab) : std::vector<bool>();
  return internal::WriteSynthesized(w, out_path, opts.n_threads, opts.progress, [&](size_t tensor) {
    const SynthTensor& t = ts[tensor];
    const int64_t n_in = t.dims[0];
    const uint64_t h = HashName(t.name);
    RowFn make_row;
    switch (t.fill) {
      case Fill::kNormal:
        make_row = NormalRows(opts.seed, t.name, 0.02f, n_in);
        break;
      case Fill::kNormOne:
        make_row = [&, h, n_in](int64_t r, float* out) {
          if (bow) {
            std::fill_n(out, n_in, 1.0f);
          } else {
            NormalRow(opts.seed, h, r, 0.02f, out, n_in);
            for (int64_t i = 0; i < n_in; ++i) out[i] += 1.0f;
          }
          return absl::OkStatus();
        };
        break;
      case Fill::kZero:
        make_row = [n_in](int64_t, float* out) {
          std::fill_n(out, n_in, 0.0f);
          return absl::OkStatus();
        };
        break;
      case Fill::kWordVector:
        make_row = [&, h, n_in](int64_t r, float* out) {
          if (wordless[r]) {
            std::fill_n(out, n_in, 0.0f);
          } else {
            NormalRow(opts.seed, h, r, 1.0f, out, n_in);
          }
          return absl::OkStatus();
        };
        break;
    }
    return make_row;
  });
}

}  // namespace llmesh::engine
