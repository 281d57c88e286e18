// Synthesized BERT encoders (`llmesh synth --arch bert`), laid out exactly
// as llama.cpp's convert_hf_to_gguf.py BertModel writes them, with a real
// WordPiece vocabulary copied from another GGUF. Two weight recipes:
//
//  - kRandom: BERT's own initialisation (every matrix and bias N(0, 0.02)),
//    LayerNorm weights 1 + N(0, 0.02): a model of a real shape for tests and
//    benchmarks, every tensor exercised.
//  - kBagOfWords: an embedder that means something without training. Each
//    word gets a random N(0, 1) vector; every attention and FFN output
//    matrix is zero, so each layer adds nothing to the residual stream, and
//    every LayerNorm is the identity on an already-normalised vector;
//    positions and token types are zero. Mean pooling then gives the
//    average of the text's word vectors: a bag-of-words embedding whose
//    cosine similarity counts shared words (random vectors in n_embd
//    dimensions are near-orthogonal). Tokens that are in nearly every text
//    get the zero vector, which every LayerNorm keeps at zero, so they add
//    nothing: control tokens ([CLS], [SEP]), single characters, and the 100
//    most frequent words (a WordPiece vocabulary is in frequency order).
//    It runs the whole BERT graph, so it is also a check of the engine path
//    with a known answer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llmesh/engine/model_quantize.h"
#include "llmesh/engine/pooling.h"
#include "llmesh/gguf/gguf_file.h"

namespace llmesh::engine {

struct BertSynthShape {
  std::string name;
  int64_t n_embd = 0, n_layer = 0, n_head = 0, n_ff = 0, n_ctx = 0;
  int64_t n_token_types = 2;
  float norm_eps = 1e-12f;
  Pooling pooling = Pooling::kMean;  // written as bert.pooling_type
};

// minilm-l6 (all-MiniLM-L6-v2), bge-small (bge-small-en-v1.5), tiny (tests).
absl::StatusOr<BertSynthShape> BertSynthShapeByName(std::string_view name);
std::vector<std::string> BertSynthShapeNames();

enum class BertSynthRecipe { kRandom, kBagOfWords };

struct BertSynthOptions {
  BertSynthShape shape;
  BertSynthRecipe recipe = BertSynthRecipe::kRandom;
  gguf::GgmlType type = gguf::GgmlType::kF32;
  bool pure = false;                      // see ChooseTensorType
  const gguf::GgufFile* vocab = nullptr;  // tokenizer.* keys copied, n_vocab from it (required)
  uint64_t seed = 42;
  int n_threads = 0;
  ProgressFn progress;
};

absl::Status SynthesizeBertModel(const BertSynthOptions& opts, const std::string& out_path);

}  // namespace llmesh::engine
