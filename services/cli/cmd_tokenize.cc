// `llmesh tokenize MODEL (-p TEXT | -f FILE)` prints token ids on one line;
// `llmesh detokenize MODEL ID...` prints the text of the ids.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "llmesh/tokenizer/tokenizer.h"

namespace llmesh::cli {
namespace {

[[noreturn]] void Fail(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  throw CLI::RuntimeError(1);
}

std::unique_ptr<tokenizer::Tokenizer> LoadOrFail(const std::string& path) {
  auto tok = tokenizer::Tokenizer::Load(path);
  if (!tok.ok()) Fail(std::string(tok.status().message()));
  return std::move(*tok);
}

}  // namespace

void RegisterTokenizeCommands(CLI::App& app) {
  struct TokenizeArgs {
    std::string model, prompt, file;
    bool no_add_special = false;
    bool parse_special = false;
  };
  auto t = std::make_shared<TokenizeArgs>();
  auto* tok_cmd = app.add_subcommand("tokenize", "Print the token ids of a text, space-separated");
  tok_cmd->add_option("MODEL", t->model, "GGUF model or vocabulary file")->required();
  auto* p = tok_cmd->add_option("-p,--prompt", t->prompt, "Text to tokenize");
  auto* f = tok_cmd->add_option("-f,--file", t->file, "File whose bytes are tokenized");
  p->excludes(f);
  tok_cmd->add_flag("--no-add-special", t->no_add_special, "Do not add BOS/EOS ([CLS]/[SEP])");
  tok_cmd->add_flag("--parse-special", t->parse_special,
                    "Recognise control tokens such as <s> or <|im_end|> written in the text");
  tok_cmd->callback([t, p, f] {
    if (p->count() == 0 && f->count() == 0) Fail("give the text with -p TEXT or -f FILE");
    std::string text = t->prompt;
    if (f->count() > 0) {
      std::ifstream in(t->file, std::ios::binary);
      if (!in) Fail("cannot read " + t->file);
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    auto tok = LoadOrFail(t->model);
    auto ids = tok->Encode(text, !t->no_add_special, t->parse_special);
    if (!ids.ok()) Fail(std::string(ids.status().message()));
    std::string line;
    for (size_t i = 0; i < ids->size(); ++i) {
      if (i) line += ' ';
      line += std::to_string((*ids)[i]);
    }
    std::printf("%s\n", line.c_str());
  });

  struct DetokenizeArgs {
    std::string model;
    std::vector<int64_t> ids;
    bool skip_special = false;
  };
  auto d = std::make_shared<DetokenizeArgs>();
  auto* detok_cmd = app.add_subcommand("detokenize", "Print the text of token ids");
  detok_cmd->add_option("MODEL", d->model, "GGUF model or vocabulary file")->required();
  detok_cmd->add_option("ID", d->ids, "Token ids")->required();
  detok_cmd->add_flag("--skip-special", d->skip_special, "Omit control tokens such as <s>");
  detok_cmd->callback([d] {
    auto tok = LoadOrFail(d->model);
    std::vector<int32_t> ids;
    for (const int64_t id : d->ids) {
      if (id < INT32_MIN || id > INT32_MAX) Fail("token id " + std::to_string(id) + " is out of range");
      ids.push_back(static_cast<int32_t>(id));
    }
    auto text = tok->Decode(ids, d->skip_special);
    if (!text.ok()) Fail(std::string(text.status().message()));
    std::fwrite(text->data(), 1, text->size(), stdout);
    std::fputc('\n', stdout);
  });
}

}  // namespace llmesh::cli
