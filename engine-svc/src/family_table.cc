// Every family the engine runs. A new one: its family_<name>.cc, its Arch
// value, and a line here.
#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "families.h"

namespace llmesh::engine {
namespace {

using FamilyFn = const Family& (*)();
constexpr std::array<FamilyFn, 12> kFamilies = {
    &internal::LlamaFamily,   &internal::Qwen2Family,    &internal::Qwen3Family,
    &internal::Gemma2Family,  &internal::Gemma3Family,   &internal::Phi3Family,
    &internal::Mistral3Family, &internal::Olmo2Family,   &internal::GraniteFamily,
    &internal::SmolLM3Family, &internal::Exaone4Family,  &internal::BitnetFamily,
};

}  // namespace

const Family* FindFamily(std::string_view name) {
  for (FamilyFn f : kFamilies) {
    if (f().name == name) return &f();
  }
  return nullptr;
}

const Family& FamilyOf(Arch arch) {
  for (FamilyFn f : kFamilies) {
    if (f().arch == arch) return f();
  }
  return internal::LlamaFamily();  // unreachable: every Arch has an entry (family_test)
}

std::vector<std::string_view> FamilyNames() {
  std::vector<std::string_view> names;
  for (FamilyFn f : kFamilies) names.push_back(f().name);
  return names;
}

std::string DescribeFeatures(const ModelParams& hp) {
  const Family& fam = FamilyOf(hp.arch);
  std::vector<std::string> parts;
  parts.push_back(hp.rope_type == RopeType::kNorm ? "rope norm" : "rope neox");
  if (!fam.pre_norms) parts.push_back("no pre-norms");
  if (fam.post_norms) parts.push_back("post-norms");
  if (fam.qk_norm == QkNorm::kPerHead) parts.push_back("per-head q/k norm");
  if (fam.qk_norm == QkNorm::kFullWidth) parts.push_back("full-width q/k norm");
  if (fam.qkv_bias) parts.push_back("qkv bias");
  parts.push_back(fam.activation == FfnActivation::kSilu ? "SwiGLU" : "GELU(tanh) gated");
  if (fam.embd_scale_sqrt) parts.push_back("embeddings x sqrt(n_embd)");
  if (fam.sub_norms) parts.push_back("attention/FFN sub-norms");
  if (hp.n_swa > 0 && !hp.swa_layers.empty()) {
    int n = 0;
    for (uint8_t s : hp.swa_layers) n += s;
    parts.push_back(absl::StrFormat("sliding window %d on %d of %d layers", hp.n_swa, n, hp.n_layer));
  }
  if (!hp.rope_layers.empty()) {
    int n = 0;
    for (uint8_t r : hp.rope_layers) n += r == 0;
    parts.push_back(absl::StrFormat("no rope on %d layers", n));
  }
  if (hp.f_attn_softcap > 0) parts.push_back(absl::StrFormat("attention softcap %g", hp.f_attn_softcap));
  if (hp.f_final_softcap > 0) parts.push_back(absl::StrFormat("logit softcap %g", hp.f_final_softcap));
  if (hp.f_embedding_scale > 0) parts.push_back(absl::StrFormat("embedding x %g", hp.f_embedding_scale));
  if (hp.f_residual_scale > 0) parts.push_back(absl::StrFormat("residual x %g", hp.f_residual_scale));
  if (hp.f_logit_scale > 0) parts.push_back(absl::StrFormat("logits / %g", hp.f_logit_scale));
  if (hp.f_attn_temp_scale != 0) parts.push_back("attention temperature");
  std::string s;
  for (const std::string& p : parts) absl::StrAppend(&s, s.empty() ? "" : ", ", p);
  return s;
}

}  // namespace llmesh::engine
