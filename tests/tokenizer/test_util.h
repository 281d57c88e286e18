// Shared helpers for tokenizer tests: locating the shared test data and
// loading the reference vectors.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "llmesh/tokenizer/tokenizer.h"

namespace llmesh::tokenizer::testing {

inline std::string SharedDir() {
  if (const char* env = std::getenv("LLMESH_SHARED_DIR")) return env;
  return LLMESH_SHARED_DIR;
}

inline std::string VectorPath(const std::string& vocab) {
  return SharedDir() + "/tokenizer-vectors/ggml-vocab-" + vocab + ".gguf";
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct VectorCase {
  std::string input;
  std::vector<int32_t> expected;
};

// X.gguf.inp: inputs separated by "\n__ggml_vocab_test__\n" (the file ends
// with one); X.gguf.out: one line of space-separated ids per input.
inline std::vector<VectorCase> LoadVectors(const std::string& gguf_path) {
  const std::string inp = ReadFile(gguf_path + ".inp");
  const std::string outp = ReadFile(gguf_path + ".out");
  static const std::string kSep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  size_t pos = 0;
  while (true) {
    const size_t next = inp.find(kSep, pos);
    if (next == std::string::npos) break;
    inputs.push_back(inp.substr(pos, next - pos));
    pos = next + kSep.size();
  }
  std::vector<VectorCase> cases;
  std::istringstream lines(outp);
  std::string line;
  for (const std::string& input : inputs) {
    if (!std::getline(lines, line)) break;
    VectorCase c{input, {}};
    std::istringstream ids(line);
    int64_t id;
    while (ids >> id) c.expected.push_back(static_cast<int32_t>(id));
    cases.push_back(std::move(c));
  }
  return cases;
}

inline const Tokenizer& SharedTokenizer(const std::string& path) {
  // Loaded once per process; Tokenizer is immutable and thread-safe.
  static std::map<std::string, std::unique_ptr<Tokenizer>>* cache =
      new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto it = cache->find(path);
  if (it == cache->end()) {
    auto tok = Tokenizer::Load(path);
    if (!tok.ok()) {
      fprintf(stderr, "cannot load %s: %s\n", path.c_str(), tok.status().ToString().c_str());
      std::abort();
    }
    it = cache->emplace(path, std::move(*tok)).first;
  }
  return *it->second;
}

inline std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(ids[i]);
  }
  return s;
}

}  // namespace llmesh::tokenizer::testing
