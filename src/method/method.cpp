#include "method/method.h"

#include <algorithm>

#include "common/error.h"
#include "method/adakv.h"
#include "method/fastkv.h"
#include "method/gemfilter.h"
#include "method/h2o.h"
#include "method/pyramidinfer.h"
#include "method/snapkv.h"
#include "method/streamingllm.h"

namespace fastkv {

LayerDecision FullMethod::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;
  return d;
}

MethodRegistry& MethodRegistry::instance() {
  static MethodRegistry* r = [] {
    auto* reg = new MethodRegistry;
    reg->add({"full", {}, [](const OptionSet&, int) -> std::unique_ptr<CompressionMethod> {
                return std::make_unique<FullMethod>();
              }});
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

void MethodRegistry::add(MethodInfo m) {
  if (!methods_.count(m.name)) order_.push_back(m.name);
  const std::string name = m.name;
  methods_[name] = std::move(m);
}

const MethodRegistry::MethodInfo& MethodRegistry::method(const std::string& name) const {
  auto it = methods_.find(name);
  if (it == methods_.end()) {
    std::string list;
    for (const auto& [n, _] : methods_) list += (list.empty() ? "" : ", ") + n;
    fail("unknown method '", name, "' (known: ", list, ")");
  }
  return it->second;
}

std::unique_ptr<CompressionMethod> MethodRegistry::create(const std::string& name, const MethodOptions& opts,
                                               int n_layer) const {
  const MethodInfo& m = method(name);
  return with_flag_names([&] { return m.make(check_options(name, m.options, opts), n_layer); });
}

std::unique_ptr<CompressionMethod> MethodRegistry::create_typed(const std::string& name,
                                                     const OptionValues& values,
                                                     int n_layer) const {
  const MethodInfo& m = method(name);
  return m.make(check_options(name, m.options, values), n_layer);
}

std::vector<std::string> MethodRegistry::names() const {
  std::vector<std::string> v;
  for (const auto& [n, _] : methods_) v.push_back(n);
  return v;
}

std::vector<MethodRegistry::SharedOption> MethodRegistry::all_options() const {
  std::vector<SharedOption> out;
  for (const std::string& name : order_) {
    for (const OptionSpec& spec : methods_.at(name).options) {
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const SharedOption& o) { return o.spec.key == spec.key; });
      if (it == out.end()) {
        out.push_back({spec, {name}});
      } else {
        it->methods.push_back(name);
      }
    }
  }
  return out;
}

}  // namespace fastkv
