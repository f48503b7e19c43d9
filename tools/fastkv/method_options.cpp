#include "method_options.h"

namespace fastkv::cli {

void MethodFlags::add_to(CLI::App* app) {
  app->add_option("--method", method, "KV compression method (full, fastkv, snapkv, streamingllm, h2o, gemfilter, "
                  "pyramidinfer, adakv)")
      ->capture_default_str();
  app->add_option("--tsp-layer", tsp_layer,
                  "FastKV: layer after which only selected tokens propagate, or 'none' "
                  "(default floor(L/2)-1)");
  app->add_option("--tsp-rate", tsp_rate, "FastKV: fraction of tokens propagated (default 0.2)");
  app->add_option("--retain-rate", retain_rate, "fraction of KV entries kept (default 0.1)");
  app->add_option("--kv-budget", kv_budget, "constant mode: KV entries kept per head");
  app->add_option("--tsp-len", tsp_len, "constant mode: tokens propagated after the TSP layer");
  app->add_option("--window", window, "observation window: last W queries (default 8)");
  app->add_option("--kernel", kernel, "pooling kernel size, odd (default 7)");
  app->add_option("--pool", pool, "pooling: max or avg (default max)");
  app->add_option("--filter-layer", filter_layer, "GemFilter: filter layer");
  app->add_option("--recent-ratio", recent_ratio, "PyramidInfer: recent query ratio");
  app->add_option("--decay", decay, "PyramidInfer: retention decay p");
  app->add_option("--floor-alpha", floor_alpha,
                  "AdaKV: fraction of each head's budget it keeps for itself (default 0.2)");
}

void MethodFlags::collect() {
  options.clear();
  auto put = [&](const char* key, const std::string& v) {
    if (!v.empty()) options[key] = v;
  };
  put("tsp_layer", tsp_layer);
  put("tsp_rate", tsp_rate);
  put("retain_rate", retain_rate);
  put("kv_budget", kv_budget);
  put("tsp_len", tsp_len);
  put("window", window);
  put("kernel", kernel);
  put("pool", pool);
  put("filter_layer", filter_layer);
  put("recent_ratio", recent_ratio);
  put("decay", decay);
  put("floor_alpha", floor_alpha);
}

}  // namespace fastkv::cli
