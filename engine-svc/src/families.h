// The families family_table.cc lists, one definition per family_<name>.cc.
#pragma once

#include "llmesh/engine/family.h"

namespace llmesh::engine::internal {

// Gemma's query scale: 1/sqrt(head_dim), except on the 27B models (told
// apart by their layer count, as llama.cpp does), which use
// 1/sqrt(n_embd / n_head).
float GemmaQueryScale(const ModelParams& hp, int64_t n_layer_27b);

const Family& LlamaFamily();
const Family& Qwen2Family();
const Family& Qwen3Family();
const Family& Gemma2Family();
const Family& Gemma3Family();
const Family& Phi3Family();
const Family& Mistral3Family();
const Family& Olmo2Family();
const Family& GraniteFamily();
const Family& SmolLM3Family();
const Family& Exaone4Family();
const Family& BitnetFamily();

}  // namespace llmesh::engine::internal
