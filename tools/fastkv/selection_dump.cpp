#include "selection_dump.h"

#include <algorithm>
#include <fstream>

#include "common/error.h"
#include "kernels/scoring.h"

namespace fastkv::cli {

nlohmann::json selection_dump(const Model& model, const SelectionDumpInput& in) {
  const PrefillStats& st = *in.stats;
  nlohmann::json j;
  j["model"] = in.model_path;
  j["model_name"] = model.config().name;
  j["n_layer"] = model.config().n_layer;
  j["backend"] = in.backend;
  j["method"] = in.method;
  j["options"] = in.options;
  j["n_prompt"] = st.n_prompt;
  j["prompt_ids"] = in.prompt;
  j["passes"] = st.passes;
  j["next_position"] = st.next_position;

  nlohmann::json prop = nlohmann::json::array();
  for (const PrefillStats::Propagation& p : st.propagations) {
    nlohmann::json e;
    e["layer"] = p.layer;
    e["pass"] = p.pass;
    e["restart"] = p.restart;
    e["positions"] = p.positions;
    prop.push_back(std::move(e));
  }
  j["propagated"] = std::move(prop);

  nlohmann::json kept = nlohmann::json::array();
  for (int l = 0; l < in.cache->n_layer(); ++l) {
    const LayerCache& lc = in.cache->layer(l);
    nlohmann::json heads = nlohmann::json::array();
    for (int h = 0; h < lc.n_heads(); ++h) {
      std::vector<int32_t> pos;
      for (int32_t p : lc.positions(h)) {
        if (p < st.next_position) pos.push_back(p);  // decoded rows come at next_position + t
      }
      std::sort(pos.begin(), pos.end());
      heads.push_back(std::move(pos));
    }
    kept.push_back(std::move(heads));
  }
  j["kept"] = std::move(kept);

  nlohmann::json top = nlohmann::json::array();
  const std::vector<float>& logits = *in.first_logits;
  for (int32_t id : kernels::topk(logits.data(), static_cast<int>(logits.size()), in.top_k)) {
    nlohmann::json e;
    e["id"] = id;
    e["logit"] = logits[id];
    if (in.tokenizer) e["text"] = in.tokenizer->token_to_piece(id, /*render_special=*/true);
    top.push_back(std::move(e));
  }
  j["top_logits"] = std::move(top);
  return j;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  if (!out) fail(path, ": cannot write");
  out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  if (!out) fail(path, ": cannot write");
}

}  // namespace fastkv::cli
