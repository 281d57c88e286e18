// A one-line progress bar on stderr for long model writes.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace llmesh::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)) {}
  // Redraws only when the whole percentage changes: writes stay cheap even
  // when called per row group.
  void Update(size_t done, size_t total) {
    const int pct = total ? static_cast<int>(done * 100 / total) : 100;
    if (pct == last_pct_) return;
    last_pct_ = pct;
    constexpr int kWidth = 40;
    const int fill = pct * kWidth / 100;
    std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %8.1f / %.1f MiB", label_.c_str(), fill,
                 "########################################", kWidth - fill, "", pct,
                 done / 1048576.0, total / 1048576.0);
    if (pct == 100) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  int last_pct_ = -1;
};

}  // namespace llmesh::cli
