// Hashes the prefill logits, every cached row and one decode step of six methods on five models
// (f32, bf16 and quant backends, 300 and 2,100 tokens), so that two builds can be compared bit
// for bit (docs/bench/session12/bitcheck.sh builds and runs it against a build's library).
// With OUT set (session 13) it prints the three parts' hashes apart instead and writes each
// case's prefill logits to $OUT/<case>.f32, so that two builds whose logits differ can still be
// shown to cache the same rows, and by how much their logits differ
// (docs/bench/session13/logit-diff.py).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "method/method_list.h"
#include "model/model.h"

using namespace fastkv;

static uint64_t fnv(uint64_t h, const void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

int main() {
  const std::string shared = std::getenv("SHARED"), models = std::getenv("MODELS");
  const char* out_dir = std::getenv("OUT");
  const std::vector<std::string> files = {
      shared + "/models/tiny-llama-gqa.gguf", shared + "/models/stories260K.gguf",
      shared + "/models/tiny-qwen2-gqa.gguf", models + "/SmolLM2-135M-Instruct.Q4_1.gguf",
      models + "/gemma-3-270m-q4_k_m.gguf"};
  const std::vector<std::string> specs = {
      "full", "fastkv:tsp_layer=1:tsp_rate=0.3:retain_rate=0.2", "h2o:retain_rate=0.2",
      "snapkv:retain_rate=0.2", "gemfilter:filter_layer=1:retain_rate=0.2",
      "pyramidinfer:recent_ratio=0.2:decay=0.5"};
  for (const std::string& f : files) {
    for (auto be : {kernels::Backend::kF32, kernels::Backend::kBf16, kernels::Backend::kQuant}) {
      LoadOptions lo;
      lo.backend = be;
      std::unique_ptr<Model> m = Model::load(f, lo);
      const int V = m->config().n_vocab;
      const bool gemma = f.find("gemma") != std::string::npos;
      for (int n : {300, 2100}) {
        if (f.find("stories") != std::string::npos && n > 500) continue;  // its context is 512
        std::vector<int32_t> t(n);
        for (int i = 0; i < n; ++i) t[i] = 1 + (i * 7919 + 13) % (V - 1);
        for (const std::string& s : specs) {
          if (gemma && s != "full" && s.rfind("fastkv", 0) != 0) continue;
          auto sp = parse_method_list(s);
          resolve_methods(sp, {}, m->config().n_layer, nullptr);
          auto pol = create_policy(sp.at(0), m->config().n_layer);
          KVCache cache;
          PrefillOutput out = m->prefill(t, *pol, cache);
          // h: all three parts in one chain (the session 12 hashes); parts[3]: each alone
          const uint64_t seed = 1469598103934665603ull;
          uint64_t h = seed, parts[3] = {seed, seed, seed};
          auto add = [&](int part, const void* p, size_t bytes) {
            h = fnv(h, p, bytes);
            parts[part] = fnv(parts[part], p, bytes);
          };
          add(0, out.logits.data(), out.logits.size() * 4);
          for (int l = 0; l < cache.n_layer(); ++l) {
            for (int hh = 0; hh < cache.layer(l).n_heads(); ++hh) {
              const HeadCache& hc = cache.layer(l).heads[hh];
              add(1, hc.pos.data(), hc.pos.size() * 4);
              add(1, hc.k.data(), hc.k.size() * 4);
              add(1, hc.v.data(), hc.v.size() * 4);
              add(1, hc.kb.data(), hc.kb.size() * 2);
              add(1, hc.vb.data(), hc.vb.size() * 2);
            }
          }
          const std::vector<float> lg = m->decode(5, out.stats.next_position, cache);
          add(2, lg.data(), lg.size() * 4);
          const std::string file = f.substr(f.rfind('/') + 1);
          if (out_dir == nullptr) {
            std::printf("%s %s n=%d %s %016llx\n", file.c_str(), kernels::backend_name(be), n,
                        s.c_str(), static_cast<unsigned long long>(h));
          } else {
            const std::string name = file + "." + kernels::backend_name(be) + "." +
                                     std::to_string(n) + "." + s.substr(0, s.find(':'));
            if (FILE* o = std::fopen((std::string(out_dir) + "/" + name + ".f32").c_str(), "wb")) {
              std::fwrite(out.logits.data(), 4, out.logits.size(), o);
              std::fclose(o);
            }
            std::printf("%s %s n=%d %s logits %016llx rows %016llx decode %016llx\n",
                        file.c_str(), kernels::backend_name(be), n, s.c_str(),
                        static_cast<unsigned long long>(parts[0]),
                        static_cast<unsigned long long>(parts[1]),
                        static_cast<unsigned long long>(parts[2]));
          }
          std::fflush(stdout);
        }
      }
    }
  }
}
