// Lexical retrieval: user text -> an FTS5 MATCH expression, ranked by FTS5's
// bm25() (Store::Reader::Lexical runs it; its definition lives in lexical.cc).
#pragma once

#include <string>
#include <string_view>

namespace llmesh::rag {

// Terms of `text` (runs of letters, digits and non-ASCII bytes), each quoted
// as an FTS5 string and ORed: "alpha" OR "beta". No FTS5 syntax from the
// user survives, so any input is a valid expression. "" when there are no
// terms. At most 64 terms, each at most 64 bytes.
std::string BuildFtsQuery(std::string_view text);

}  // namespace llmesh::rag
