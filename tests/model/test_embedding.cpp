// The token embedding lookup (model/model.h, EmbeddingTable): rows are dequantised from the
// GGUF's own bytes on use, and must equal the rows of the whole table decoded at once, for
// every stored type; no f32 copy of the table is kept.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_util.h"

namespace fastkv {
namespace {

// Every row the model looks up equals the same row of read_f32 of the whole table.
void expect_rows_match(const Model& m, const std::vector<int32_t>& tokens) {
  const int D = m.config().d_model;
  const std::vector<float> table = m.file().read_f32("token_embd.weight");
  std::vector<float> got(tokens.size() * static_cast<size_t>(D));
  m.embed(tokens.data(), static_cast<int>(tokens.size()), got.data());
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (int j = 0; j < D; ++j) {
      ASSERT_EQ(got[i * D + j], table[static_cast<size_t>(tokens[i]) * D + j])
          << "token " << tokens[i] << " channel " << j;
    }
  }
}

TEST(Embedding, RowsOfTheSharedModels) {
  for (const char* name : {"stories260K.gguf", "tiny-llama-gqa.gguf", "tiny-qwen2-gqa.gguf"}) {
    SCOPED_TRACE(name);
    auto m = Model::load(test::shared_path(std::string("models/") + name));
    const int V = m->config().n_vocab;
    expect_rows_match(*m, {0, 1, V / 2, V - 1, 7, 7});
    EXPECT_EQ(m->weights().token_embd.rows, V);
  }
}

// Quantised tables: synthetic one-layer SmolLM2-shaped models (D = 576) of each type the
// synthesiser writes, with stories260K's 512-token vocabulary.
TEST(Embedding, RowsOfQuantisedTables) {
  const std::string dir = test::temp_dir();
  for (const char* type : {"q8_0", "q4_0", "bf16", "f16", "f32"}) {
    SCOPED_TRACE(type);
    synth::Options o;
    o.like = "smollm2-135m";
    o.type = type;
    o.vocab = test::shared_path("models/stories260K.gguf");
    o.out = dir + "/m-" + type + ".gguf";
    o.layers = 1;
    synth::write_model(o);
    auto m = Model::load(o.out);
    const int V = m->config().n_vocab;
    expect_rows_match(*m, {0, 3, V / 3, V - 1});
    const gguf::TensorInfo& t = m->file().tensor("token_embd.weight");
    EXPECT_EQ(m->weights().token_embd.row_bytes, t.nbytes / static_cast<uint64_t>(V));
    // Decode reads one row as stored, not as f32.
    EXPECT_LE(m->weights().token_embd.row_bytes, 576u * 4);
  }
  std::filesystem::remove_all(dir);
}

TEST(Embedding, OutOfRangeTokensAreErrors) {
  auto m = Model::load(test::shared_path("models/stories260K.gguf"));
  std::vector<float> out(m->config().d_model);
  const int32_t bad[] = {m->config().n_vocab};
  EXPECT_THROW(m->embed(bad, 1, out.data()), Error);
  const int32_t neg[] = {-1};
  EXPECT_THROW(m->embed(neg, 1, out.data()), Error);
  EXPECT_THROW(m->weights().token_embd.row(-1, out.data()), Error);
}

}  // namespace
}  // namespace fastkv
