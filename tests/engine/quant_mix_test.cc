// The tensor types of llama.cpp's file types, from llama-quant.cpp's rules.
#include "llmesh/engine/quant_mix.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace llmesh::engine {
namespace {

using gguf::GgmlType;

QuantMix Mix(std::string_view name) {
  auto m = QuantMix::Parse(name);
  EXPECT_TRUE(m.ok()) << name << ": " << m.status();
  return m.ok() ? *m : QuantMix{};
}

TEST(QuantMixTest, NamesAndFileTypesAreLlamaCpps) {
  struct Case {
    const char* name;
    GgmlType type;
    uint32_t ftype;
    const char* printed;
  };
  for (const Case& c : std::vector<Case>{{"Q4_0", GgmlType::kQ4_0, 2, "Q4_0"},
                                         {"q8_0", GgmlType::kQ8_0, 7, "Q8_0"},
                                         {"F16", GgmlType::kF16, 1, "F16"},
                                         {"Q4_K_M", GgmlType::kQ4_K, 15, "Q4_K_M"},
                                         {"Q4_K", GgmlType::kQ4_K, 15, "Q4_K_M"},  // llama-quantize's alias
                                         {"Q4_K_S", GgmlType::kQ4_K, 14, "Q4_K_S"},
                                         {"Q5_K_M", GgmlType::kQ5_K, 17, "Q5_K_M"},
                                         {"Q3_K_L", GgmlType::kQ3_K, 13, "Q3_K_L"},
                                         {"Q6_K", GgmlType::kQ6_K, 18, "Q6_K"},
                                         {"IQ4_XS", GgmlType::kIQ4_XS, 30, "IQ4_XS"},
                                         {"TQ1_0", GgmlType::kTQ1_0, 36, "TQ1_0"},
                                         {"tq2_0", GgmlType::kTQ2_0, 37, "TQ2_0"}}) {
    const QuantMix m = Mix(c.name);
    EXPECT_EQ(m.type, c.type) << c.name;
    EXPECT_EQ(m.FileType(), c.ftype) << c.name;
    EXPECT_EQ(m.Name(), c.printed) << c.name;
  }
  for (const char* bad : {"", "Q4_2", "Q4_K_X", "Q8_K", "Q4_0_M", "q4_k_m_"}) {
    auto m = QuantMix::Parse(bad);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// TinyLlama's shape: 22 layers, 4 query heads per KV head, untied output.
const MixModel kTinyLlama{22, 8, 0, false};

std::vector<int> LayersWith(const QuantMix& mix, const MixModel& model, const std::string& tensor, GgmlType want) {
  std::vector<int> layers;
  for (int i = 0; i < model.n_layer; ++i) {
    const std::string name = absl::StrCat("blk.", i, ".", tensor);
    if (ChooseTensorType(mix, model, name, 2, 2048, false) == want) layers.push_back(i);
  }
  return layers;
}

TEST(QuantMixTest, Q4KMGivesHalfOfAttnVAndFfnDownQ6K) {
  // use_more_bits: the first and last eighth, and every third layer between.
  const std::vector<int> more = {0, 1, 4, 7, 10, 13, 16, 19, 20, 21};
  const QuantMix m = Mix("Q4_K_M");
  EXPECT_EQ(LayersWith(m, kTinyLlama, "attn_v.weight", GgmlType::kQ6_K), more);
  EXPECT_EQ(LayersWith(m, kTinyLlama, "ffn_down.weight", GgmlType::kQ6_K), more);
  EXPECT_EQ(LayersWith(m, kTinyLlama, "attn_q.weight", GgmlType::kQ4_K).size(), 22u);
  EXPECT_EQ(LayersWith(m, kTinyLlama, "ffn_up.weight", GgmlType::kQ4_K).size(), 22u);
  EXPECT_EQ(ChooseTensorType(m, kTinyLlama, "output.weight", 2, 2048, false), GgmlType::kQ6_K);
  EXPECT_EQ(ChooseTensorType(m, kTinyLlama, "token_embd.weight", 2, 2048, false), GgmlType::kQ4_K);
  EXPECT_EQ(ChooseTensorType(m, kTinyLlama, "blk.3.attn_qkv.weight", 2, 2048, false), GgmlType::kQ5_K);
  EXPECT_EQ(ChooseTensorType(m, kTinyLlama, "blk.3.attn_norm.weight", 1, 2048, false), GgmlType::kF32);
  // --pure: every matrix the mix's type.
  EXPECT_EQ(ChooseTensorType(m, kTinyLlama, "blk.0.attn_v.weight", 2, 2048, true), GgmlType::kQ4_K);
  EXPECT_EQ(ChooseTensorType(m, kTinyLlama, "output.weight", 2, 2048, true), GgmlType::kQ4_K);
}

TEST(QuantMixTest, OtherMixesFollowTheirRules) {
  EXPECT_EQ(LayersWith(Mix("Q4_K_S"), kTinyLlama, "attn_v.weight", GgmlType::kQ5_K), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(LayersWith(Mix("Q4_K_S"), kTinyLlama, "ffn_down.weight", GgmlType::kQ5_K), (std::vector<int>{0, 1}));
  EXPECT_EQ(LayersWith(Mix("Q5_K_M"), kTinyLlama, "ffn_down.weight", GgmlType::kQ6_K).size(), 10u);
  EXPECT_EQ(LayersWith(Mix("Q3_K_M"), kTinyLlama, "attn_v.weight", GgmlType::kQ5_K), (std::vector<int>{0, 1}));
  EXPECT_EQ(LayersWith(Mix("Q3_K_M"), kTinyLlama, "ffn_down.weight", GgmlType::kQ5_K), (std::vector<int>{0}));
  EXPECT_EQ(LayersWith(Mix("Q3_K_M"), kTinyLlama, "attn_output.weight", GgmlType::kQ4_K).size(), 22u);
  EXPECT_EQ(LayersWith(Mix("Q3_K_L"), kTinyLlama, "ffn_down.weight", GgmlType::kQ5_K).size(), 22u);
  EXPECT_EQ(LayersWith(Mix("Q2_K"), kTinyLlama, "attn_v.weight", GgmlType::kQ4_K).size(), 22u);  // n_gqa >= 4
  EXPECT_EQ(LayersWith(Mix("Q2_K"), MixModel{22, 1, 0, false}, "attn_v.weight", GgmlType::kQ3_K).size(), 22u);
  EXPECT_EQ(LayersWith(Mix("IQ4_XS"), kTinyLlama, "attn_v.weight", GgmlType::kQ5_K).size(), 22u);
  EXPECT_EQ(LayersWith(Mix("IQ4_XS"), kTinyLlama, "ffn_down.weight", GgmlType::kQ5_K), (std::vector<int>{0, 1}));
  EXPECT_EQ(LayersWith(Mix("Q4_0"), kTinyLlama, "ffn_down.weight", GgmlType::kQ4_0).size(), 22u);
  // Mixtral-like: 8 experts keep attn_v and attn_k at Q8_0.
  const MixModel moe{32, 4, 8, false};
  EXPECT_EQ(ChooseTensorType(Mix("Q4_K_M"), moe, "blk.5.attn_k.weight", 2, 4096, false), GgmlType::kQ8_0);
  EXPECT_EQ(ChooseTensorType(Mix("Q4_K_M"), moe, "blk.5.attn_output.weight", 2, 4096, false), GgmlType::kQ5_K);
  // Ternary: token embeddings Q4_K, the lm head Q6_K.
  EXPECT_EQ(ChooseTensorType(Mix("TQ2_0"), kTinyLlama, "token_embd.weight", 2, 2048, false), GgmlType::kQ4_K);
  EXPECT_EQ(ChooseTensorType(Mix("TQ1_0"), kTinyLlama, "output.weight", 2, 2048, false), GgmlType::kQ6_K);
  EXPECT_EQ(ChooseTensorType(Mix("TQ1_0"), kTinyLlama, "blk.0.ffn_up.weight", 2, 2048, false), GgmlType::kTQ1_0);
  EXPECT_EQ(ChooseTensorType(Mix("TQ2_0"), MixModel{30, 4, 0, true}, "token_embd.weight", 2, 2560, false),
            GgmlType::kQ6_K);  // tied: the lm head's rule wins
  EXPECT_EQ(ChooseTensorType(Mix("TQ2_0"), kTinyLlama, "token_embd.weight", 2, 2560, true), GgmlType::kTQ2_0);
  // Float files keep every matrix at their type.
  EXPECT_EQ(ChooseTensorType(Mix("F16"), kTinyLlama, "output.weight", 2, 2048, false), GgmlType::kF16);
  EXPECT_EQ(ChooseTensorType(Mix("Q8_0"), kTinyLlama, "output.weight", 2, 2048, false), GgmlType::kQ8_0);
  // A tied lm head is token_embd.
  const MixModel tied{22, 8, 0, true};
  EXPECT_EQ(ChooseTensorType(Mix("Q4_0"), tied, "token_embd.weight", 2, 2048, false), GgmlType::kQ6_K);
}

TEST(QuantMixTest, RowsThatDoNotFitTheBlocksFallBackAsLlamaCpp) {
  // qwen2-0.5b's 896-wide rows are not whole 256-blocks.
  EXPECT_EQ(ChooseTensorType(Mix("Q4_K_M"), kTinyLlama, "blk.0.attn_q.weight", 2, 896, false), GgmlType::kQ5_0);
  EXPECT_EQ(ChooseTensorType(Mix("Q5_K_M"), kTinyLlama, "blk.0.attn_q.weight", 2, 896, false), GgmlType::kQ5_1);
  EXPECT_EQ(ChooseTensorType(Mix("Q4_K_M"), kTinyLlama, "blk.0.ffn_down.weight", 2, 896, false), GgmlType::kQ8_0);
  EXPECT_EQ(ChooseTensorType(Mix("Q4_K_M"), kTinyLlama, "output.weight", 2, 896, false), GgmlType::kQ8_0);
  EXPECT_EQ(ChooseTensorType(Mix("Q3_K_S"), kTinyLlama, "blk.0.attn_q.weight", 2, 896, false), GgmlType::kIQ4_NL);
  EXPECT_EQ(ChooseTensorType(Mix("IQ4_XS"), kTinyLlama, "blk.0.attn_q.weight", 2, 896, false), GgmlType::kIQ4_NL);
  EXPECT_EQ(ChooseTensorType(Mix("TQ2_0"), kTinyLlama, "blk.0.attn_q.weight", 2, 896, false), GgmlType::kQ4_0);
  EXPECT_EQ(ChooseTensorType(Mix("Q4_0"), kTinyLlama, "blk.0.attn_q.weight", 2, 40, false), GgmlType::kF16);
}

}  // namespace
}  // namespace llmesh::engine
