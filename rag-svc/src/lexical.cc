#include "llmesh/rag/lexical.h"

#include <cctype>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "llmesh/rag/store.h"

namespace llmesh::rag {

std::string BuildFtsQuery(std::string_view text) {
  std::vector<std::string> terms;
  std::set<std::string> seen;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty() && terms.size() < 64 && seen.insert(cur).second)
      terms.push_back(absl::StrCat("\"", cur.substr(0, 64), "\""));
    cur.clear();
  };
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) cur.push_back(static_cast<char>(std::tolower(c)));
    else flush();
  }
  flush();
  return absl::StrJoin(terms, " OR ");
}

absl::StatusOr<std::vector<std::pair<int64_t, double>>> Store::Reader::Lexical(const std::string& fts_query,
                                                                               const FilterSql& filter,
                                                                               size_t limit) {
  std::vector<std::pair<int64_t, double>> out;
  if (fts_query.empty() || limit == 0) return out;
  std::string sql = "SELECT f.rowid, bm25(chunks_fts) AS s FROM chunks_fts f WHERE chunks_fts MATCH ?";
  if (!filter.clause.empty())
    absl::StrAppend(&sql, " AND f.rowid IN (SELECT c.id FROM chunks c WHERE ", filter.clause, ")");
  absl::StrAppend(&sql, " ORDER BY s LIMIT ", limit);
  auto q = db_->Prepare(sql);
  if (!q.ok()) return q.status();
  q->Bind(1, fts_query);
  for (size_t i = 0; i < filter.params.size(); ++i) q->Bind(static_cast<int>(i + 2), filter.params[i]);
  while (true) {
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    // bm25() is lower-is-better; results carry higher-is-better.
    out.emplace_back(q->Int(0), -q->Double(1));
  }
  return out;
}

}  // namespace llmesh::rag
