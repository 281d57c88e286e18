// libFuzzer entry point for the tokenizer: arbitrary bytes into Encode for
// each reference vocabulary (SPM, BPE, WordPiece), with special-token parsing
// on and off. Nothing may crash; valid UTF-8 must tokenize and decode again
// to valid UTF-8, invalid UTF-8 must be rejected with INVALID_ARGUMENT.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llmesh/tokenizer/detokenizer.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace {

using llmesh::tokenizer::Tokenizer;

std::string SharedDir() {
  if (const char* env = std::getenv("LLMESH_SHARED_DIR")) return env;
#ifdef LLMESH_SHARED_DIR
  return LLMESH_SHARED_DIR;
#else
  return "../shared";
#endif
}

const std::vector<std::unique_ptr<Tokenizer>>& Tokenizers() {
  static const auto* toks = [] {
    auto* v = new std::vector<std::unique_ptr<Tokenizer>>();
    for (const char* name : {"llama-spm", "gpt-2", "bert-bge"}) {
      const std::string path = SharedDir() + "/tokenizer-vectors/ggml-vocab-" + name + ".gguf";
      auto tok = Tokenizer::Load(path);
      if (!tok.ok()) {
        std::fprintf(stderr, "tokenizer_fuzz: cannot load %s: %s (set LLMESH_SHARED_DIR)\n",
                     path.c_str(), std::string(tok.status().message()).c_str());
        std::abort();
      }
      v->push_back(std::move(*tok));
    }
    return v;
  }();
  return *toks;
}

bool IsValidUtf8(std::string_view s) {
  // Minimal re-check independent of the library's validator.
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // long inputs only slow the search down
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& tok : Tokenizers()) {
    for (const bool parse_special : {false, true}) {
      auto ids = tok->Encode(text, /*add_special=*/parse_special, parse_special);
      if (!ids.ok()) {
        if (ids.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
        continue;
      }
      for (const int32_t id : *ids) {
        if (id < 0 || id >= tok->n_vocab()) std::abort();
      }
      auto decoded = tok->Decode(*ids);
      if (!decoded.ok() || !IsValidUtf8(*decoded)) std::abort();
      llmesh::tokenizer::StreamingDetokenizer stream(*tok);
      std::string streamed;
      for (const int32_t id : *ids) streamed += *stream.Push(id);
      streamed += stream.Flush();
      if (streamed != *decoded) std::abort();
    }
  }
  return 0;
}
