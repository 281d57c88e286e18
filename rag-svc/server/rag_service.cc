#include "rag_service.h"

#include "absl/strings/str_cat.h"
#include "llmesh/rpc/status.h"

namespace llmesh::rag {
namespace {

absl::Time DeadlineOf(grpc::CallbackServerContext* ctx) {
  auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

Metric FromProto(v1::DistanceMetric m) {
  return m == v1::DISTANCE_METRIC_INNER_PRODUCT ? Metric::kInnerProduct : Metric::kCosine;
}
v1::DistanceMetric ToProto(Metric m) {
  return m == Metric::kInnerProduct ? v1::DISTANCE_METRIC_INNER_PRODUCT : v1::DISTANCE_METRIC_COSINE;
}

void ToProto(const CollectionInfo& info, v1::Collection* out) {
  const auto& c = info.config;
  out->set_name(c.name);
  out->set_embedding_model(c.embedding_model);
  out->set_dimension(c.dimension);
  out->set_metric(ToProto(c.metric));
  out->mutable_chunking()->set_chunk_tokens(c.chunking.chunk_tokens);
  out->mutable_chunking()->set_overlap_tokens(c.chunking.overlap_tokens);
  out->mutable_hnsw()->set_m(c.hnsw.m);
  out->mutable_hnsw()->set_ef_construction(c.hnsw.ef_construction);
  out->mutable_hnsw()->set_ef_search(c.hnsw.ef_search);
  out->set_document_count(info.document_count);
  out->set_chunk_count(info.chunk_count);
  out->set_size_bytes(info.size_bytes);
}

absl::StatusOr<RetrievalMode> ModeFromProto(v1::RetrievalMode m) {
  switch (m) {
    case v1::RETRIEVAL_MODE_UNSPECIFIED:
    case v1::RETRIEVAL_MODE_HYBRID: return RetrievalMode::kHybrid;
    case v1::RETRIEVAL_MODE_DENSE: return RetrievalMode::kDense;
    case v1::RETRIEVAL_MODE_LEXICAL: return RetrievalMode::kLexical;
    default: return absl::InvalidArgumentError(absl::StrCat("unknown retrieval mode ", static_cast<int>(m)));
  }
}

}  // namespace

grpc::ServerUnaryReactor* RagServiceImpl::Run(grpc::CallbackServerContext* ctx,
                                              std::function<absl::Status(Rag&)> fn) {
  auto* reactor = ctx->DefaultReactor();
  Rag* rag = rag_.load();
  if (!rag) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "storage is still opening"));
    return reactor;
  }
  bool queued = pool_.Submit([reactor, rag, fn = std::move(fn)] { reactor->Finish(rpc::ToGrpcStatus(fn(*rag))); });
  if (!queued) reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "rag work queue is full"));
  return reactor;
}

grpc::ServerUnaryReactor* RagServiceImpl::CreateCollection(grpc::CallbackServerContext* ctx,
                                                           const v1::CreateCollectionRequest* req,
                                                           v1::Collection* resp) {
  return Run(ctx, [this, ctx, req, resp](Rag& rag) -> absl::Status {
    CollectionConfig c;
    c.name = req->name();
    c.embedding_model = req->embedding_model();
    c.dimension = req->dimension();
    c.metric = FromProto(req->metric());
    c.chunking = {req->chunking().chunk_tokens(), req->chunking().overlap_tokens()};
    c.hnsw = {req->hnsw().m(), req->hnsw().ef_construction(), req->hnsw().ef_search()};
    GrpcEmbedder grpc_embedder(downstream_, ctx);
    RetryingEmbedder embedder(grpc_embedder, retry_, DeadlineOf(ctx));
    auto info = rag.CreateCollection(c, embedder);
    if (!info.ok()) return info.status();
    ToProto(*info, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RagServiceImpl::ListCollections(grpc::CallbackServerContext* ctx,
                                                          const v1::ListCollectionsRequest*,
                                                          v1::ListCollectionsResponse* resp) {
  return Run(ctx, [resp](Rag& rag) -> absl::Status {
    auto all = rag.ListCollections();
    if (!all.ok()) return all.status();
    for (const auto& info : *all) ToProto(info, resp->add_collections());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RagServiceImpl::GetCollection(grpc::CallbackServerContext* ctx,
                                                        const v1::GetCollectionRequest* req, v1::Collection* resp) {
  return Run(ctx, [req, resp](Rag& rag) -> absl::Status {
    auto info = rag.GetCollection(req->name());
    if (!info.ok()) return info.status();
    ToProto(*info, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RagServiceImpl::DeleteCollection(grpc::CallbackServerContext* ctx,
                                                           const v1::DeleteCollectionRequest* req,
                                                           v1::DeleteCollectionResponse*) {
  return Run(ctx, [req](Rag& rag) { return rag.DeleteCollection(req->name()); });
}

grpc::ServerUnaryReactor* RagServiceImpl::Upsert(grpc::CallbackServerContext* ctx, const v1::UpsertRequest* req,
                                                 v1::UpsertResponse* resp) {
  return Run(ctx, [this, ctx, req, resp](Rag& rag) -> absl::Status {
    std::vector<DocumentInput> docs;
    docs.reserve(static_cast<size_t>(req->documents_size()));
    for (const auto& d : req->documents()) {
      DocumentInput in;
      in.id = d.id();
      in.text = d.text();
      in.format = d.format() == v1::DOCUMENT_FORMAT_MARKDOWN ? DocFormat::kMarkdown : DocFormat::kPlain;
      in.source = d.source();
      in.metadata = Metadata(d.metadata().begin(), d.metadata().end());
      docs.push_back(std::move(in));
    }
    GrpcEmbedder grpc_embedder(downstream_, ctx);
    RetryingEmbedder embedder(grpc_embedder, retry_, DeadlineOf(ctx));
    GrpcTokenCounter counter(downstream_, ctx);
    auto r = rag.Upsert(req->collection(), docs, embedder, counter);
    if (!r.ok()) return r.status();
    resp->set_documents(r->documents);
    resp->set_chunks(r->chunks);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RagServiceImpl::DeleteDocuments(grpc::CallbackServerContext* ctx,
                                                          const v1::DeleteDocumentsRequest* req,
                                                          v1::DeleteDocumentsResponse* resp) {
  return Run(ctx, [req, resp](Rag& rag) -> absl::Status {
    std::vector<std::string> ids(req->ids().begin(), req->ids().end());
    auto n = rag.DeleteDocuments(req->collection(), ids);
    if (!n.ok()) return n.status();
    resp->set_deleted(*n);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RagServiceImpl::Query(grpc::CallbackServerContext* ctx, const v1::QueryRequest* req,
                                                v1::QueryResponse* resp) {
  return Run(ctx, [this, ctx, req, resp](Rag& rag) -> absl::Status {
    QueryOptions o;
    o.query = req->query();
    o.top_k = req->top_k();
    auto mode = ModeFromProto(req->mode());
    if (!mode.ok()) return mode.status();
    o.mode = *mode;
    for (const auto& f : req->filters())
      o.filters.push_back({f.key(), std::vector<std::string>(f.values().begin(), f.values().end())});
    GrpcEmbedder grpc_embedder(downstream_, ctx);
    RetryingEmbedder embedder(grpc_embedder, retry_, DeadlineOf(ctx));
    auto hits = rag.Query(req->collection(), o, embedder);
    if (!hits.ok()) return hits.status();
    for (auto& h : *hits) {
      auto* r = resp->add_results();
      r->set_chunk_id(absl::StrCat(h.chunk_id));
      r->set_document_id(std::move(h.document_id));
      r->set_text(std::move(h.text));
      r->set_score(h.score);
      r->set_source(std::move(h.source));
      for (auto& [k, v] : h.metadata) (*r->mutable_metadata())[k] = v;
    }
    return absl::OkStatus();
  });
}

}  // namespace llmesh::rag
