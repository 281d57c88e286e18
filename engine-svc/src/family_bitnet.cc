// bitnet: BitNet b1.58 (Microsoft's 2B4T and the 0.7B/3B reproductions).
// llama's layer plus an RMS norm on the attention output before Wo and on
// the gated FFN's product before Wdown; the weights are ternary, stored as
// TQ1_0/TQ2_0 (or F16 with the scale folded in, or {-1, 0, 1} with a
// per-tensor W.scale, which any family may carry: family.h). Embeddings tied;
// NEOX rope, as llama.cpp rotates this architecture.
//
//   x += (rms_norm(attention(rms_norm(x) * attn_norm)) * attn_sub_norm) @ Wo
//   x += (rms_norm(swiglu(rms_norm(x) * ffn_norm)) * ffn_sub_norm) @ Wdown
#include "absl/strings/str_cat.h"
#include "families.h"

namespace llmesh::engine::internal {
namespace {

// The 2B4T checkpoint was trained with relu^2, but the converters write no
// activation key and llama.cpp runs SiLU unless `hidden_activation` says
// otherwise; a file that asks for anything else is refused, not misread.
absl::Status ReadBitnet(const gguf::GgufFile& f, const std::string& arch, ModelParams&) {
  const std::string key = arch + ".hidden_activation";
  if (f.Find(key) == nullptr) return absl::OkStatus();
  auto act = f.GetString(key);
  if (!act.ok()) return act.status();
  if (*act != "silu") {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' = '", std::string(*act), "' is not supported (only silu)"));
  }
  return absl::OkStatus();
}

}  // namespace

const Family& BitnetFamily() {
  static const Family f{.arch = Arch::kBitnet,
                        .name = "bitnet",
                        .example = "BitNet b1.58 2B4T, bitnet_b1_58-large/3B",
                        .rope_type = RopeType::kNeox,
                        .sub_norms = true,
                        .read_params = &ReadBitnet};
  return f;
}

}  // namespace llmesh::engine::internal
