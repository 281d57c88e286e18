// The families family_table.cc lists, one definition per family_<name>.cc.
#pragma once

#include "llmesh/engine/family.h"

namespace llmesh::engine::internal {

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

}  // namespace llmesh::engine::internal
