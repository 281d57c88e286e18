#include "llmesh/rag/rag.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "llmesh/rag/chunker.h"
#include "spdlog/spdlog.h"

namespace llmesh::rag {
namespace fs = std::filesystem;
namespace {

constexpr char kProbeText[] = "dimension probe";

void FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

absl::StatusOr<HnswOptions> ValidateHnsw(HnswOptions h, const HnswOptions& defaults) {
  if (h.m == 0) h.m = defaults.m;
  if (h.ef_construction == 0) h.ef_construction = defaults.ef_construction;
  if (h.ef_search == 0) h.ef_search = defaults.ef_search;
  if (h.m < 2 || h.m > 128) return absl::InvalidArgumentError(absl::StrCat("hnsw.m must be in 2..128, got ", h.m));
  if (h.ef_construction < 1 || h.ef_construction > 4096)
    return absl::InvalidArgumentError(absl::StrCat("hnsw.ef_construction must be in 1..4096, got ", h.ef_construction));
  if (h.ef_search < 1 || h.ef_search > 4096)
    return absl::InvalidArgumentError(absl::StrCat("hnsw.ef_search must be in 1..4096, got ", h.ef_search));
  return h;
}

}  // namespace

absl::Status ValidateCollectionName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("collection name is empty");
  if (name.size() > 64) return absl::InvalidArgumentError("collection name is longer than 64 bytes");
  if (name[0] == '.' || name[0] == '-')
    return absl::InvalidArgumentError(absl::StrCat("collection name '", name, "' starts with '", name.substr(0, 1), "'"));
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return absl::InvalidArgumentError(
          absl::StrCat("collection name '", name, "' has characters outside [A-Za-z0-9_.-]"));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Rag>> Rag::Open(RagOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data_dir is empty");
  std::unique_ptr<Rag> rag(new Rag(std::move(options)));
  std::error_code ec;
  fs::create_directories(rag->collections_dir(), ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", rag->collections_dir(), ": ", ec.message()));
  for (const auto& entry : fs::directory_iterator(rag->collections_dir(), ec)) {
    std::string leaf = entry.path().filename().string();
    if (!entry.is_directory()) continue;
    if (leaf[0] == '.') {  // a create or delete that did not finish
      fs::remove_all(entry.path(), ec);
      continue;
    }
    absl::Time t0 = absl::Now();
    auto c = Collection::Open(entry.path().string(), rag->options_.collection);
    if (!c.ok()) return absl::Status(c.status().code(), absl::StrCat("collection '", leaf, "': ", c.status().message()));
    const auto& r = (*c)->recovery();
    spdlog::info("event=collection_opened name={} index_loaded={} chunks_added={} labels_dropped={} ms={}", leaf,
                 r.loaded, r.added, r.dropped, absl::ToInt64Milliseconds(absl::Now() - t0));
    rag->collections_[leaf] = std::move(*c);
  }
  if (ec) return absl::InternalError(absl::StrCat("list ", rag->collections_dir(), ": ", ec.message()));
  return rag;
}

absl::StatusOr<CollectionInfo> Rag::CreateCollection(CollectionConfig config, Embedder& embedder) {
  if (auto st = ValidateCollectionName(config.name); !st.ok()) return st;
  if (config.embedding_model.empty()) return absl::InvalidArgumentError("embedding_model is empty");
  if (config.dimension < 0 || config.dimension > kMaxDimension)
    return absl::InvalidArgumentError(absl::StrCat("dimension must be in 0..", kMaxDimension, ", got ", config.dimension));
  if (config.chunking.chunk_tokens == 0 && config.chunking.overlap_tokens == 0) config.chunking = options_.default_chunking;
  auto chunking = ValidateChunking(config.chunking);
  if (!chunking.ok()) return chunking.status();
  config.chunking = *chunking;
  auto hnsw = ValidateHnsw(config.hnsw, options_.default_hnsw);
  if (!hnsw.ok()) return hnsw.status();
  config.hnsw = *hnsw;
  {
    std::lock_guard lock(mu_);
    if (collections_.count(config.name))
      return absl::AlreadyExistsError(absl::StrCat("collection '", config.name, "' exists"));
  }
  if (config.dimension == 0) {  // ask the engine, outside the lock
    auto probe = EmbedBatched(embedder, config.embedding_model, {kProbeText}, 1);
    if (!probe.ok()) return probe.status();
    config.dimension = static_cast<int32_t>(probe->front().size());
  }

  std::lock_guard lock(mu_);
  if (collections_.count(config.name))
    return absl::AlreadyExistsError(absl::StrCat("collection '", config.name, "' exists"));
  std::string final_dir = collections_dir() + "/" + config.name;
  std::string tmp_dir = absl::StrCat(collections_dir(), "/.new-", config.name, "-", absl::ToUnixNanos(absl::Now()));
  std::error_code ec;
  fs::remove_all(final_dir, ec);  // a stray directory no collection owns
  fs::create_directories(tmp_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", tmp_dir, ": ", ec.message()));
  {
    auto built = Collection::Create(tmp_dir, config, options_.collection);
    if (!built.ok()) {
      fs::remove_all(tmp_dir, ec);
      return built.status();
    }
  }  // closed before the rename: SQLite names its WAL after the path
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", tmp_dir, ": ", ec.message()));
  FsyncDir(collections_dir());
  auto c = Collection::Open(final_dir, options_.collection);
  if (!c.ok()) return c.status();
  collections_[config.name] = *c;
  spdlog::info("event=collection_created name={} model={} dimension={}", config.name, config.embedding_model,
               config.dimension);
  return (*c)->Info();
}

absl::StatusOr<std::shared_ptr<Collection>> Rag::Find(const std::string& name) {
  if (auto st = ValidateCollectionName(name); !st.ok()) return st;
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) return absl::NotFoundError(absl::StrCat("collection '", name, "' not found"));
  return it->second;
}

absl::StatusOr<std::vector<CollectionInfo>> Rag::ListCollections() {
  std::vector<std::shared_ptr<Collection>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, c] : collections_) all.push_back(c);
  }
  std::vector<CollectionInfo> out;
  for (const auto& c : all) {
    auto info = c->Info();
    if (absl::IsNotFound(info.status())) continue;  // deleted meanwhile
    if (!info.ok()) return info.status();
    out.push_back(std::move(*info));
  }
  return out;
}

absl::StatusOr<CollectionInfo> Rag::GetCollection(const std::string& name) {
  auto c = Find(name);
  if (!c.ok()) return c.status();
  return (*c)->Info();
}

absl::Status Rag::DeleteCollection(const std::string& name) {
  if (auto st = ValidateCollectionName(name); !st.ok()) return st;
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) return absl::NotFoundError(absl::StrCat("collection '", name, "' not found"));
  it->second->Drop();  // waits for in-flight writes and queries
  collections_.erase(it);
  std::string dir = collections_dir() + "/" + name;
  std::string trash = absl::StrCat(collections_dir(), "/.del-", name, "-", absl::ToUnixNanos(absl::Now()));
  std::error_code ec;
  fs::rename(dir, trash, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", dir, ": ", ec.message()));
  FsyncDir(collections_dir());
  fs::remove_all(trash, ec);
  spdlog::info("event=collection_deleted name={}", name);
  return absl::OkStatus();
}

absl::StatusOr<UpsertResult> Rag::Upsert(const std::string& collection, const std::vector<DocumentInput>& docs,
                                         Embedder& embedder, TokenCounter& counter) {
  auto c = Find(collection);
  if (!c.ok()) return c.status();
  return (*c)->Upsert(docs, embedder, counter);
}

absl::StatusOr<int32_t> Rag::DeleteDocuments(const std::string& collection, const std::vector<std::string>& ids) {
  auto c = Find(collection);
  if (!c.ok()) return c.status();
  return (*c)->DeleteDocuments(ids);
}

absl::StatusOr<std::vector<QueryHit>> Rag::Query(const std::string& collection, const QueryOptions& options,
                                                 Embedder& embedder) {
  auto c = Find(collection);
  if (!c.ok()) return c.status();
  return (*c)->Query(options, embedder);
}

absl::Status Rag::SaveAll() {
  std::vector<std::shared_ptr<Collection>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, c] : collections_) all.push_back(c);
  }
  absl::Status result;
  for (const auto& c : all) {
    auto st = c->SaveIndex();
    if (!st.ok()) {
      spdlog::warn("event=index_save_failed collection={} error={}", c->config().name, st.ToString());
      result.Update(st);
    }
  }
  return result;
}

}  // namespace llmesh::rag
