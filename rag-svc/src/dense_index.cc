#include "llmesh/rag/dense_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "hnsw_graph.h"

namespace llmesh::rag {
namespace {

constexpr char kMetaMagic[] = "llmesh-hnsw-v1";

// FNV-1a 64 of a file's bytes; also returns its size.
absl::StatusOr<std::pair<uint64_t, uint64_t>> HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  uint64_t h = 1469598103934665603ull, size = 0;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(buf[static_cast<size_t>(i)]);
      h *= 1099511628211ull;
    }
    size += static_cast<uint64_t>(n);
  }
  return std::make_pair(h, size);
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, " for fsync failed"));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync ", path, " failed"));
  return absl::OkStatus();
}

absl::Status WriteFileDurably(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("write ", tmp, " failed"));
  }
  if (auto st = FsyncPath(tmp, false); !st.ok()) return st;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return absl::InternalError(absl::StrCat("rename ", tmp));
  return absl::OkStatus();
}

}  // namespace

void Normalize(std::span<float> v) {
  double ss = 0;
  for (float x : v) ss += static_cast<double>(x) * x;
  if (ss <= 0) return;
  float inv = static_cast<float>(1.0 / std::sqrt(ss));
  for (float& x : v) x *= inv;
}

DenseIndex::DenseIndex(int32_t dim, Metric metric)
    : dim_(dim), metric_(metric), space_(std::make_unique<InnerProductSpace>(static_cast<size_t>(dim))) {}

DenseIndex::~DenseIndex() = default;

absl::StatusOr<std::unique_ptr<DenseIndex>> DenseIndex::Create(int32_t dim, Metric metric, HnswOptions options,
                                                               size_t capacity) {
  if (dim <= 0 || dim > kMaxDimension) return absl::InvalidArgumentError(absl::StrCat("bad dimension ", dim));
  std::unique_ptr<DenseIndex> index(new DenseIndex(dim, metric));
  try {
    index->hnsw_ = std::make_unique<HnswGraph>(
        index->space_.get(), std::max<size_t>(capacity, 16), static_cast<size_t>(options.m),
        static_cast<size_t>(options.ef_construction));
    index->hnsw_->setEf(static_cast<size_t>(options.ef_search));
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat("hnsw create: ", e.what()));
  }
  return index;
}

absl::StatusOr<std::unique_ptr<DenseIndex>> DenseIndex::Load(const std::string& path, int32_t dim, Metric metric,
                                                             HnswOptions options, int64_t* watermark) {
  std::ifstream meta(path + ".meta");
  std::string magic;
  int64_t wm = 0, mdim = 0, mmetric = -1;
  uint64_t hash = 0, size = 0;
  if (!(meta >> magic >> wm >> mdim >> mmetric >> size >> hash) || magic != kMetaMagic)
    return absl::DataLossError("index sidecar missing or unreadable");
  if (mdim != dim || mmetric != static_cast<int64_t>(metric))
    return absl::DataLossError("index built for another dimension or metric");
  auto actual = HashFile(path);
  if (!actual.ok()) return actual.status();
  if (actual->first != hash || actual->second != size) return absl::DataLossError("index file does not match its sidecar");
  std::unique_ptr<DenseIndex> index(new DenseIndex(dim, metric));
  try {
    index->hnsw_ = std::make_unique<HnswGraph>(index->space_.get(), path, false);
    if (index->hnsw_->data_size_ != static_cast<size_t>(dim) * sizeof(float))
      return absl::DataLossError("index dimension mismatch");
    // hnswlib 0.6.2's loading constructor never initialises num_deleted_
    // before counting into it: count again from zero.
    auto& h = *index->hnsw_;
    h.num_deleted_ = 0;
    for (size_t i = 0; i < h.cur_element_count; ++i) h.num_deleted_ += h.isMarkedDeleted(static_cast<hnswlib::tableint>(i));
    index->hnsw_->setEf(static_cast<size_t>(options.ef_search));
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("hnsw load: ", e.what()));
  }
  *watermark = wm;
  return index;
}

absl::Status DenseIndex::Save(const std::string& path, int64_t watermark) const {
  std::string tmp = path + ".tmp";
  try {
    hnsw_->saveIndex(tmp);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("hnsw save: ", e.what()));
  }
  // saveIndex does not check its writes: compare the size with what it must be.
  uint64_t expected = sizeof(hnsw_->offsetLevel0_) + sizeof(hnsw_->max_elements_) + sizeof(hnsw_->cur_element_count) +
             sizeof(hnsw_->size_data_per_element_) + sizeof(hnsw_->label_offset_) + sizeof(hnsw_->offsetData_) +
             sizeof(hnsw_->maxlevel_) + sizeof(hnsw_->enterpoint_node_) + sizeof(hnsw_->maxM_) +
             sizeof(hnsw_->maxM0_) + sizeof(hnsw_->M_) + sizeof(hnsw_->mult_) + sizeof(hnsw_->ef_construction_);
  expected += hnsw_->cur_element_count * hnsw_->size_data_per_element_;
  for (size_t i = 0; i < hnsw_->cur_element_count; ++i)
    expected += sizeof(unsigned int) +
                (hnsw_->element_levels_[i] > 0 ? hnsw_->size_links_per_element_ * hnsw_->element_levels_[i] : 0);
  auto actual = HashFile(tmp);
  if (!actual.ok()) return actual.status();
  if (actual->second != expected)
    return absl::InternalError(absl::StrCat("index write incomplete: ", actual->second, " of ", expected, " bytes"));
  if (auto st = FsyncPath(tmp, false); !st.ok()) return st;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return absl::InternalError(absl::StrCat("rename ", tmp));
  std::string meta = absl::StrCat(kMetaMagic, " ", watermark, " ", dim_, " ", static_cast<int>(metric_), " ",
                                  actual->second, " ", actual->first, "\n");
  if (auto st = WriteFileDurably(path + ".meta", meta); !st.ok()) return st;
  return FsyncPath(std::filesystem::path(path).parent_path().string(), true);
}

std::vector<float> DenseIndex::Prepare(std::span<const float> v) const {
  std::vector<float> out(v.begin(), v.end());
  if (metric_ == Metric::kCosine) Normalize(out);
  return out;
}

absl::Status DenseIndex::Add(int64_t label, std::span<const float> vec) {
  if (static_cast<int32_t>(vec.size()) != dim_)
    return absl::InvalidArgumentError(absl::StrCat("vector of dimension ", vec.size(), ", index has ", dim_));
  std::vector<float> v = Prepare(vec);
  const auto key = static_cast<hnswlib::labeltype>(label);
  try {
    // A label already present (live or removed) gets a new node and its old
    // one becomes a tombstone, rather than hnswlib 0.6.2's in-place update
    // (addPoint on a known label): its updatePoint memcpy's into a null
    // vector for a node with no neighbours on some level, undefined behaviour
    // and common (any node alone on its top level). Loading keeps the newest
    // node of a label, this one; the collection compacts tombstones on load.
    if (auto it = hnsw_->label_lookup_.find(key); it != hnsw_->label_lookup_.end()) {
      if (!hnsw_->isMarkedDeleted(it->second)) hnsw_->markDeletedInternal(it->second);
      hnsw_->label_lookup_.erase(it);
    }
    if (hnsw_->cur_element_count >= hnsw_->max_elements_)
      hnsw_->resizeIndex(std::max<size_t>(1024, hnsw_->max_elements_ * 2));
    hnsw_->Insert(v.data(), key);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("hnsw add: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status DenseIndex::Remove(int64_t label) {
  auto it = hnsw_->label_lookup_.find(static_cast<hnswlib::labeltype>(label));
  if (it == hnsw_->label_lookup_.end() || hnsw_->isMarkedDeleted(it->second)) return absl::OkStatus();
  try {
    hnsw_->markDelete(static_cast<hnswlib::labeltype>(label));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("hnsw delete: ", e.what()));
  }
  return absl::OkStatus();
}

std::vector<DenseHit> DenseIndex::Exact(const std::vector<float>& q, size_t k) const {
  // (distance, label) over every live element; distance = 1 - dot as in hnswlib.
  std::vector<std::pair<float, int64_t>> all;
  all.reserve(live_count());
  auto dist = hnsw_->fstdistfunc_;
  void* param = hnsw_->dist_func_param_;
  for (size_t i = 0; i < hnsw_->cur_element_count; ++i) {
    auto id = static_cast<hnswlib::tableint>(i);
    if (hnsw_->isMarkedDeleted(id)) continue;
    all.emplace_back(dist(q.data(), hnsw_->getDataByInternalId(id), param),
                     static_cast<int64_t>(hnsw_->getExternalLabel(id)));
  }
  k = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end());
  std::vector<DenseHit> hits(k);
  for (size_t i = 0; i < k; ++i) hits[i] = {all[i].second, 1.0f - all[i].first};
  return hits;
}

absl::StatusOr<std::vector<DenseHit>> DenseIndex::Search(std::span<const float> query, size_t k) const {
  if (static_cast<int32_t>(query.size()) != dim_)
    return absl::InvalidArgumentError(absl::StrCat("query of dimension ", query.size(), ", index has ", dim_));
  std::vector<DenseHit> hits;
  const size_t live = live_count();
  if (k == 0 || live == 0) return hits;
  std::vector<float> q = Prepare(query);
  // Asked for every live element: an exact scan costs what the graph walk
  // would, and cannot miss a node the graph cannot reach.
  if (k >= live) return Exact(q, k);
  try {
    auto pq = hnsw_->searchKnn(q.data(), k);
    // HNSW must give min(k, live) hits; fewer means part of the graph was not
    // reachable (tombstones, duplicate vectors): answer exactly instead.
    if (pq.size() < k) return Exact(q, k);
    hits.resize(pq.size());
    for (size_t i = pq.size(); i-- > 0;) {  // the queue pops the farthest first
      hits[i] = {static_cast<int64_t>(pq.top().second), 1.0f - pq.top().first};
      pq.pop();
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("hnsw search: ", e.what()));
  }
  return hits;
}

std::vector<int64_t> DenseIndex::Labels() const {
  std::vector<int64_t> out;
  out.reserve(hnsw_->label_lookup_.size());
  for (const auto& [label, internal] : hnsw_->label_lookup_)
    if (!hnsw_->isMarkedDeleted(internal)) out.push_back(static_cast<int64_t>(label));
  return out;
}

size_t DenseIndex::live_count() const { return hnsw_->cur_element_count - hnsw_->num_deleted_; }
size_t DenseIndex::deleted_count() const { return hnsw_->num_deleted_; }
void DenseIndex::SetEf(int32_t ef) { hnsw_->setEf(static_cast<size_t>(ef)); }

}  // namespace llmesh::rag
