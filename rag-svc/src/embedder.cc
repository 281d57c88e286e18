#include "llmesh/rag/embedder.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "absl/strings/str_cat.h"

namespace llmesh::rag {

absl::StatusOr<std::vector<std::vector<float>>> RetryingEmbedder::Embed(const std::string& model,
                                                                        const std::vector<std::string>& texts) {
  absl::Duration backoff = policy_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    ++attempts_;
    auto r = inner_.Embed(model, texts);
    if (r.ok()) return r;
    bool transient = absl::IsUnavailable(r.status()) || absl::IsDeadlineExceeded(r.status());
    if (!transient || attempt >= policy_.max_attempts) return r;
    if (absl::Now() + backoff >= deadline_) return r;
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(policy_.max_backoff, backoff * policy_.multiplier);
  }
}

absl::StatusOr<std::vector<std::vector<float>>> EmbedBatched(Embedder& embedder, const std::string& model,
                                                             const std::vector<std::string>& texts,
                                                             int batch_size) {
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  batch_size = std::max(1, batch_size);
  for (size_t begin = 0; begin < texts.size(); begin += static_cast<size_t>(batch_size)) {
    size_t end = std::min(texts.size(), begin + static_cast<size_t>(batch_size));
    std::vector<std::string> batch(texts.begin() + static_cast<std::ptrdiff_t>(begin),
                                   texts.begin() + static_cast<std::ptrdiff_t>(end));
    auto r = embedder.Embed(model, batch);
    if (!r.ok()) return r.status();
    if (r->size() != batch.size())
      return absl::InternalError(absl::StrCat("embedder returned ", r->size(), " vectors for ", batch.size(), " texts"));
    for (auto& v : *r) {
      if (v.empty() || (!out.empty() && v.size() != out.front().size()))
        return absl::InternalError("embedder returned vectors of differing dimensions");
      for (float x : v)
        if (!std::isfinite(x)) return absl::InternalError("embedder returned a non-finite value");
      out.push_back(std::move(v));
    }
  }
  return out;
}

}  // namespace llmesh::rag
