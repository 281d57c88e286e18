// Test doubles for the rag library's downstream interfaces.
#pragma once

#include <atomic>
#include <cctype>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llmesh/rag/dense_index.h"
#include "llmesh/rag/embedder.h"

namespace llmesh::rag::testing {

// Bag of words hashed into `dim` buckets, L2-normalised: texts sharing words
// are close, so dense retrieval behaves sensibly in tests.
class FakeEmbedder : public Embedder {
 public:
  explicit FakeEmbedder(int dim = 64) : dim_(dim) {}
  absl::StatusOr<std::vector<std::vector<float>>> Embed(const std::string&,
                                                        const std::vector<std::string>& texts) override {
    ++calls;
    max_batch = std::max<int>(max_batch, static_cast<int>(texts.size()));
    std::vector<std::vector<float>> out;
    for (const auto& t : texts) out.push_back(Vector(t));
    return out;
  }
  std::vector<float> Vector(const std::string& text) const {
    std::vector<float> v(static_cast<size_t>(dim_), 0.0f);
    std::string word;
    auto flush = [&] {
      if (word.empty()) return;
      v[std::hash<std::string>{}(word) % v.size()] += 1.0f;
      word.clear();
    };
    for (char c : text) {
      if (std::isalnum(static_cast<unsigned char>(c))) word.push_back(static_cast<char>(std::tolower(c)));
      else flush();
    }
    flush();
    v[0] += 0.01f;  // never the zero vector
    Normalize(v);
    return v;
  }
  std::atomic<int> calls{0};
  std::atomic<int> max_batch{0};

 private:
  int dim_;
};

// Fails with `error` for the first `failures` calls, then delegates.
class FlakyEmbedder : public Embedder {
 public:
  FlakyEmbedder(Embedder& inner, int failures, absl::Status error)
      : inner_(inner), failures_(failures), error_(std::move(error)) {}
  absl::StatusOr<std::vector<std::vector<float>>> Embed(const std::string& model,
                                                        const std::vector<std::string>& texts) override {
    ++calls;
    if (calls <= failures_) return error_;
    return inner_.Embed(model, texts);
  }
  int calls = 0;

 private:
  Embedder& inner_;
  int failures_;
  absl::Status error_;
};

// One token per whitespace-separated word.
class FakeTokenCounter : public TokenCounter {
 public:
  absl::StatusOr<std::vector<int32_t>> Count(const std::string&, const std::vector<std::string>& texts) override {
    std::vector<int32_t> out;
    for (const auto& t : texts) {
      int32_t n = 0;
      bool in_word = false;
      for (char c : t) {
        bool space = std::isspace(static_cast<unsigned char>(c));
        if (!space && !in_word) ++n;
        in_word = !space;
      }
      out.push_back(n);
    }
    return out;
  }
};

}  // namespace llmesh::rag::testing
