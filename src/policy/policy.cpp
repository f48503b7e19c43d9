#include "policy/policy.h"

#include "common/error.h"
#include "policy/adakv.h"
#include "policy/fastkv.h"
#include "policy/gemfilter.h"
#include "policy/h2o.h"
#include "policy/pyramidinfer.h"
#include "policy/snapkv.h"
#include "policy/streamingllm.h"

namespace fastkv {

LayerDecision FullPolicy::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;
  return d;
}

PolicyRegistry& PolicyRegistry::instance() {
  static PolicyRegistry* r = [] {
    auto* reg = new PolicyRegistry;
    reg->add("full", [](const PolicyOptions& opts, int) -> std::unique_ptr<Policy> {
      if (!opts.empty()) fail("method 'full' takes no options (got '", opts.begin()->first, "')");
      return std::make_unique<FullPolicy>();
    });
    register_fastkv(*reg);
    register_snapkv(*reg);
    register_streamingllm(*reg);
    register_h2o(*reg);
    register_gemfilter(*reg);
    register_pyramidinfer(*reg);
    register_adakv(*reg);
    return reg;
  }();
  return *r;
}

void PolicyRegistry::add(const std::string& name, Factory f) { factories_[name] = std::move(f); }

std::unique_ptr<Policy> PolicyRegistry::create(const std::string& name, const PolicyOptions& opts,
                                               int n_layer) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::string list;
    for (const auto& [n, _] : factories_) list += (list.empty() ? "" : ", ") + n;
    fail("unknown method '", name, "' (known: ", list, ")");
  }
  return it->second(opts, n_layer);
}

std::vector<std::string> PolicyRegistry::names() const {
  std::vector<std::string> v;
  for (const auto& [n, _] : factories_) v.push_back(n);
  return v;
}

}  // namespace fastkv
