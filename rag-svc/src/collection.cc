#include "llmesh/rag/collection.h"

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "llmesh/rag/chunker.h"
#include "llmesh/rag/fusion.h"
#include "llmesh/rag/lexical.h"
#include "llmesh/rag/markdown.h"

namespace llmesh::rag {
namespace {

constexpr size_t kMaxFilters = 32;
constexpr size_t kMaxFilterValues = 256;

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

}  // namespace

absl::Status ValidateQuery(QueryOptions& o) {
  if (o.query.empty()) return absl::InvalidArgumentError("query is empty");
  if (o.top_k == 0) o.top_k = 5;
  if (o.top_k < 1 || o.top_k > kMaxTopK)
    return absl::InvalidArgumentError(absl::StrCat("top_k must be in 1..", kMaxTopK, ", got ", o.top_k));
  if (o.filters.size() > kMaxFilters)
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxFilters, " filters"));
  for (size_t i = 0; i < o.filters.size(); ++i) {
    const auto& f = o.filters[i];
    if (f.key.empty()) return absl::InvalidArgumentError(absl::StrCat("filters[", i, "].key is empty"));
    if (f.values.empty())
      return absl::InvalidArgumentError(absl::StrCat("filters[", i, "] (", f.key, ") has no values"));
    if (f.values.size() > kMaxFilterValues)
      return absl::InvalidArgumentError(absl::StrCat("filters[", i, "] has more than ", kMaxFilterValues, " values"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDocuments(const std::vector<DocumentInput>& docs) {
  if (docs.empty()) return absl::InvalidArgumentError("no documents");
  std::unordered_set<std::string> ids;
  for (size_t i = 0; i < docs.size(); ++i) {
    const auto& d = docs[i];
    if (d.id.empty()) return absl::InvalidArgumentError(absl::StrCat("documents[", i, "].id is empty"));
    if (d.id.size() > kMaxDocumentIdBytes)
      return absl::InvalidArgumentError(absl::StrCat("documents[", i, "].id is longer than ", kMaxDocumentIdBytes));
    if (!ids.insert(d.id).second)
      return absl::InvalidArgumentError(absl::StrCat("document id '", d.id, "' appears twice"));
    if (d.text.find_first_not_of(" \t\r\n") == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("documents[", i, "] (", d.id, ") has no text"));
    if (d.metadata.size() > kMaxMetadataEntries)
      return absl::InvalidArgumentError(absl::StrCat("documents[", i, "] has more than ", kMaxMetadataEntries,
                                                     " metadata entries"));
    for (const auto& [k, v] : d.metadata)
      if (k.empty()) return absl::InvalidArgumentError(absl::StrCat("documents[", i, "] has an empty metadata key"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Collection>> Collection::Create(const std::string& dir, const CollectionConfig& config,
                                                               CollectionOptions options) {
  auto store = Store::Create(dir + "/" + kDbFile, config);
  if (!store.ok()) return store.status();
  std::shared_ptr<Collection> c(new Collection(dir, std::move(*store), options));
  if (auto st = c->Recover(); !st.ok()) return st;
  return c;
}

absl::StatusOr<std::shared_ptr<Collection>> Collection::Open(const std::string& dir, CollectionOptions options) {
  auto store = Store::Open(dir + "/" + kDbFile);
  if (!store.ok()) return store.status();
  std::shared_ptr<Collection> c(new Collection(dir, std::move(*store), options));
  if (auto st = c->Recover(); !st.ok()) return st;
  return c;
}

absl::Status Collection::Recover() {
  const auto& cfg = store_->config();
  auto live = store_->AllChunkIds();
  if (!live.ok()) return live.status();
  int64_t watermark = 0;
  auto loaded = DenseIndex::Load(index_path(), cfg.dimension, cfg.metric, cfg.hnsw, &watermark);
  // Too many tombstones: start afresh rather than carry them.
  if (loaded.ok() && (*loaded)->deleted_count() > 1024 && (*loaded)->deleted_count() > live->size())
    loaded = absl::DataLossError("compacting");
  if (loaded.ok()) {
    index_ = std::move(*loaded);
    recovery_.loaded = true;
    std::unordered_set<int64_t> live_set(live->begin(), live->end());
    for (int64_t label : index_->Labels()) {
      if (live_set.count(label)) continue;
      if (auto st = index_->Remove(label); !st.ok()) return st;
      ++recovery_.dropped;
    }
  } else {
    auto created = DenseIndex::Create(cfg.dimension, cfg.metric, cfg.hnsw, live->size() + live->size() / 4 + 1024);
    if (!created.ok()) return created.status();
    index_ = std::move(*created);
    watermark = 0;
  }
  applied_ = watermark;
  auto st = store_->ForEachChunkAfter(watermark, [&](int64_t id, std::vector<float> v) -> absl::Status {
    if (static_cast<int32_t>(v.size()) != cfg.dimension)
      return absl::DataLossError(absl::StrCat("chunk ", id, " has a vector of dimension ", v.size()));
    if (auto s = index_->Add(id, v); !s.ok()) return s;
    applied_ = std::max(applied_, id);
    ++recovery_.added;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (!live->empty()) applied_ = std::max(applied_, live->back());
  // Saved already when nothing needed doing; otherwise the next SaveIndex writes it.
  saved_version_ = (recovery_.loaded && recovery_.added == 0 && recovery_.dropped == 0) ? 0 : -1;
  return absl::OkStatus();
}

absl::Status Collection::CheckLive() const {
  if (dropped_) return absl::NotFoundError(absl::StrCat("collection '", store_->config().name, "' was deleted"));
  return absl::OkStatus();
}

absl::Status Collection::Apply(const WriteResult& w) {
  for (int64_t id : w.removed)
    if (auto st = index_->Remove(id); !st.ok()) return st;
  for (const auto& [id, v] : w.added) {
    if (auto st = index_->Add(id, v); !st.ok()) return st;
    applied_ = std::max(applied_, id);
  }
  version_.fetch_add(1);
  return absl::OkStatus();
}

absl::StatusOr<UpsertResult> Collection::Upsert(const std::vector<DocumentInput>& docs, Embedder& embedder,
                                                TokenCounter& counter) {
  if (auto st = ValidateDocuments(docs); !st.ok()) return st;
  const auto& cfg = store_->config();
  // Chunk and embed first, holding nothing: the slow part.
  Chunker chunker(cfg.chunking);
  std::vector<PreparedDocument> prepared;
  std::vector<std::string> texts;
  for (const auto& d : docs) {
    auto chunks = chunker.Split(ParseDocument(d.text, d.format), counter, cfg.embedding_model);
    if (!chunks.ok()) return chunks.status();
    PreparedDocument p{d, {}, {}};
    for (auto& c : *chunks) {
      texts.push_back(c.text);
      p.chunks.push_back(std::move(c.text));
    }
    prepared.push_back(std::move(p));
  }
  auto vectors = EmbedBatched(embedder, cfg.embedding_model, texts, options_.embed_batch);
  if (!vectors.ok()) return vectors.status();
  if (!vectors->empty() && static_cast<int32_t>(vectors->front().size()) != cfg.dimension)
    return absl::InvalidArgumentError(absl::StrCat("model '", cfg.embedding_model, "' gives vectors of dimension ",
                                                   vectors->front().size(), ", collection '", cfg.name, "' has ",
                                                   cfg.dimension));
  size_t next = 0;
  for (auto& p : prepared)
    for (size_t i = 0; i < p.chunks.size(); ++i) p.embeddings.push_back(std::move((*vectors)[next++]));

  absl::WriterMutexLock lock(&mu_);
  if (auto st = CheckLive(); !st.ok()) return st;
  auto written = store_->Upsert(prepared);
  if (!written.ok()) return written.status();
  // Committed: from here the upsert is durable. An index failure now is
  // repaired from SQLite at the next start; report it, don't undo the commit.
  if (auto st = Apply(*written); !st.ok()) return st;
  return UpsertResult{written->documents, written->chunks};
}

absl::StatusOr<int32_t> Collection::DeleteDocuments(const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::InvalidArgumentError("no document ids");
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i].empty()) return absl::InvalidArgumentError(absl::StrCat("ids[", i, "] is empty"));
  absl::WriterMutexLock lock(&mu_);
  if (auto st = CheckLive(); !st.ok()) return st;
  int32_t deleted = 0;
  auto removed = store_->DeleteDocuments(ids, &deleted);
  if (!removed.ok()) return removed.status();
  WriteResult w;
  w.removed = std::move(*removed);
  if (auto st = Apply(w); !st.ok()) return st;
  return deleted;
}

absl::StatusOr<std::vector<std::pair<int64_t, double>>> Collection::Dense(Store::Reader& reader,
                                                                          std::span<const float> q,
                                                                          const FilterSql& filter, size_t n) {
  std::vector<std::pair<int64_t, double>> out;
  if (filter.clause.empty()) {
    auto hits = index_->Search(q, n);
    if (!hits.ok()) return hits.status();
    for (const auto& h : *hits) out.emplace_back(h.label, h.score);
    return out;
  }
  // Few matching chunks: exact scores over exactly those.
  auto vecs = reader.FilteredVectors(filter, options_.exact_filter_limit);
  if (!vecs.ok()) return vecs.status();
  if (vecs->size() <= options_.exact_filter_limit) {
    std::vector<float> qn(q.begin(), q.end());
    bool cosine = store_->config().metric == Metric::kCosine;
    if (cosine) Normalize(qn);
    for (auto& [id, v] : *vecs) {
      if (v.size() != qn.size()) continue;
      if (cosine) Normalize(v);
      double dot = 0;
      for (size_t i = 0; i < v.size(); ++i) dot += static_cast<double>(v[i]) * qn[i];
      out.emplace_back(id, dot);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
    if (out.size() > n) out.resize(n);
    return out;
  }
  // Many: over-fetch from HNSW and keep what passes, widening until enough.
  auto allowed_ids = reader.FilteredIds(filter);
  if (!allowed_ids.ok()) return allowed_ids.status();
  std::unordered_set<int64_t> allowed(allowed_ids->begin(), allowed_ids->end());
  for (size_t k = n * 8;; k *= 4) {
    auto hits = index_->Search(q, k);
    if (!hits.ok()) return hits.status();
    out.clear();
    for (const auto& h : *hits)
      if (allowed.count(h.label) && out.size() < n) out.emplace_back(h.label, h.score);
    if (out.size() >= n || k >= index_->live_count()) return out;
  }
}

absl::StatusOr<std::vector<QueryHit>> Collection::Query(const QueryOptions& in, Embedder& embedder) {
  QueryOptions o = in;
  if (auto st = ValidateQuery(o); !st.ok()) return st;
  const auto& cfg = store_->config();
  const size_t k = static_cast<size_t>(o.top_k);
  const size_t n = o.mode == RetrievalMode::kHybrid ? std::max(k, options_.fusion_candidates) : k;
  std::vector<float> qvec;
  if (o.mode != RetrievalMode::kLexical) {
    auto v = EmbedBatched(embedder, cfg.embedding_model, {o.query}, 1);
    if (!v.ok()) return v.status();
    if (static_cast<int32_t>(v->front().size()) != cfg.dimension)
      return absl::InvalidArgumentError(absl::StrCat("model '", cfg.embedding_model, "' gives vectors of dimension ",
                                                     v->front().size(), ", collection has ", cfg.dimension));
    qvec = std::move(v->front());
  }
  FilterSql filter = BuildFilterSql(o.filters);

  absl::ReaderMutexLock lock(&mu_);
  if (auto st = CheckLive(); !st.ok()) return st;
  auto reader = store_->BeginRead();
  if (!reader.ok()) return reader.status();
  std::vector<std::pair<int64_t, double>> dense, lexical, ranked;
  if (o.mode != RetrievalMode::kLexical) {
    auto d = Dense(*reader, qvec, filter, n);
    if (!d.ok()) return d.status();
    dense = std::move(*d);
  }
  if (o.mode != RetrievalMode::kDense) {
    auto l = reader->Lexical(BuildFtsQuery(o.query), filter, n);
    if (!l.ok()) return l.status();
    lexical = std::move(*l);
  }
  if (o.mode == RetrievalMode::kDense) ranked = std::move(dense);
  else if (o.mode == RetrievalMode::kLexical) ranked = std::move(lexical);
  else {
    std::vector<int64_t> a, b;
    for (const auto& [id, s] : dense) a.push_back(id);
    for (const auto& [id, s] : lexical) b.push_back(id);
    ranked = ReciprocalRankFusion({a, b});
  }
  if (ranked.size() > k) ranked.resize(k);
  std::vector<int64_t> ids;
  for (const auto& [id, s] : ranked) ids.push_back(id);
  auto rows = reader->Fetch(ids);
  if (!rows.ok()) return rows.status();
  std::vector<QueryHit> hits;
  size_t r = 0;
  for (const auto& [id, score] : ranked) {
    if (r >= rows->size() || (*rows)[r].id != id) continue;  // vanished (cannot under the lock; be safe)
    auto& row = (*rows)[r++];
    hits.push_back({id, std::move(row.document_id), std::move(row.text), score, std::move(row.source),
                    std::move(row.metadata)});
  }
  return hits;
}

absl::StatusOr<CollectionInfo> Collection::Info() {
  absl::ReaderMutexLock lock(&mu_);
  if (auto st = CheckLive(); !st.ok()) return st;
  auto reader = store_->BeginRead();
  if (!reader.ok()) return reader.status();
  auto counts = reader->Counts();
  if (!counts.ok()) return counts.status();
  CollectionInfo info;
  info.config = store_->config();
  info.document_count = counts->first;
  info.chunk_count = counts->second;
  info.size_bytes = store_->SizeBytes() + FileSize(index_path());
  return info;
}

absl::Status Collection::SaveIndex() {
  std::lock_guard save_lock(save_mu_);
  absl::ReaderMutexLock lock(&mu_);  // excludes writers; queries go on
  if (dropped_) return absl::OkStatus();
  int64_t version = version_.load();
  if (version == saved_version_) return absl::OkStatus();
  if (auto st = index_->Save(index_path(), applied_); !st.ok()) return st;
  saved_version_ = version;
  return absl::OkStatus();
}

void Collection::Drop() {
  absl::WriterMutexLock lock(&mu_);
  dropped_ = true;
}

}  // namespace llmesh::rag
