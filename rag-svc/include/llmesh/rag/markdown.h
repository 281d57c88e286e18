// Document text -> sections of paragraphs, the structure the chunker packs.
// Plain text: one section, paragraphs split at blank lines. Markdown: every
// heading starts a section (its title is the path of enclosing headings);
// markup is stripped (emphasis, links -> their text, images -> alt text,
// inline code, HTML tags, table pipes, list and quote markers); fenced code
// is kept verbatim as one paragraph; list items are paragraphs of their own.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "llmesh/rag/types.h"

namespace llmesh::rag {

struct Section {
  std::string heading;  // "" for text before the first heading / plain text
  std::vector<std::string> paragraphs;  // whitespace-normalised, never empty strings
};

std::vector<Section> ParseDocument(std::string_view text, DocFormat format);

// Inline markdown markup removed from one line (exposed for tests).
std::string StripInlineMarkdown(std::string_view line);

}  // namespace llmesh::rag
