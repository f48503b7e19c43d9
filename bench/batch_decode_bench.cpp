// fastkv_batch_decode_bench: the prototype measurement for batched decoding across server
// slots (docs/server.md, "Batched decoding: design"). For each batch size B it prefills B
// sequences of random prompt tokens (one compression method for all), then times `steps`
// decode steps two ways on separate copies of the caches:
//   alone:   B calls of Model::decode per step (what B busy slots do today, one after another)
//   batched: one Model::decode_batch of the B sequences per step
// and prints the aggregate decode tokens/s of each, wall and process CPU time, and their ratio.
//
//   fastkv_batch_decode_bench MODEL [--backend f32|bf16|quant] [-p PROMPT] [-n STEPS]
//                             [-b 1,2,4,8] [-t THREADS] [--method full|fastkv|...]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "kernels/parallel.h"
#include "method/method.h"
#include "model/model.h"

namespace {

using fastkv::KVCache;
using fastkv::Model;

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Seqs {
  std::vector<std::unique_ptr<fastkv::CompressionMethod>> methods;
  std::vector<KVCache> caches;
  std::vector<int64_t> pos;
  std::vector<int32_t> next;
};

Seqs prefill(const Model& m, int B, int P, const std::string& method, uint32_t seed) {
  Seqs s;
  s.caches.resize(B);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(1, m.config().n_vocab - 1);
  for (int b = 0; b < B; ++b) {
    std::vector<int32_t> prompt(P);
    for (int32_t& t : prompt) t = tok(rng);
    s.methods.push_back(
        fastkv::MethodRegistry::instance().create(method, {}, m.config().n_layer));
    fastkv::PrefillOutput out = m.prefill(prompt, *s.methods.back(), s.caches[b]);
    s.pos.push_back(out.stats.next_position);
    s.next.push_back(tok(rng));
  }
  return s;
}

std::vector<int> int_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr,
                   "usage: %s MODEL [--backend f32|bf16|quant] [-p PROMPT] [-n STEPS] "
                   "[-b 1,2,4,8] [-t THREADS] [--method NAME]\n",
                   argv[0]);
      return 1;
    }
    std::string path = argv[1], backend = "quant", method = "full";
    int P = 512, steps = 32, threads = 0;
    std::vector<int> batches = {1, 2, 4, 8};
    for (int i = 2; i + 1 < argc; i += 2) {
      const std::string k = argv[i], v = argv[i + 1];
      if (k == "--backend") backend = v;
      else if (k == "-p") P = std::stoi(v);
      else if (k == "-n") steps = std::stoi(v);
      else if (k == "-b") batches = int_list(v);
      else if (k == "-t") threads = std::stoi(v);
      else if (k == "--method") method = v;
      else fastkv::fail("unknown option ", k);
    }
    fastkv::LoadOptions lo;
    lo.backend = backend == "f32"    ? fastkv::kernels::Backend::kF32
                 : backend == "bf16" ? fastkv::kernels::Backend::kBf16
                                     : fastkv::kernels::Backend::kQuant;
    auto m = Model::load(path, lo);
    if (threads > 0) fastkv::kernels::set_threads(threads);
    std::printf("model %s, backend %s, method %s, prompt %d, %d steps, %d threads\n",
                path.c_str(), fastkv::kernels::backend_name(m->backend()), method.c_str(), P,
                steps, fastkv::kernels::max_threads());
    std::printf("%3s %14s %14s %14s %14s %9s %9s\n", "B", "alone tok/s", "batched tok/s",
                "alone tok/cpu-s", "batch tok/cpu-s", "wall x", "cpu x");
    for (int B : batches) {
      Seqs alone = prefill(*m, B, P, method, 1234 + B);
      Seqs batch = prefill(*m, B, P, method, 1234 + B);
      // One untimed step each (first-touch of buffers).
      for (int b = 0; b < B; ++b) (void)m->decode(alone.next[b], alone.pos[b]++, alone.caches[b]);
      {
        std::vector<KVCache*> cs;
        for (KVCache& c : batch.caches) cs.push_back(&c);
        (void)m->decode_batch(batch.next, batch.pos, cs);
        for (int64_t& p : batch.pos) ++p;
      }
      double w0 = wall_seconds(), c0 = cpu_seconds();
      for (int s = 0; s < steps; ++s) {
        for (int b = 0; b < B; ++b) {
          (void)m->decode(alone.next[b], alone.pos[b]++, alone.caches[b]);
        }
      }
      const double alone_wall = wall_seconds() - w0, alone_cpu = cpu_seconds() - c0;
      std::vector<KVCache*> cs;
      for (KVCache& c : batch.caches) cs.push_back(&c);
      w0 = wall_seconds();
      c0 = cpu_seconds();
      for (int s = 0; s < steps; ++s) {
        (void)m->decode_batch(batch.next, batch.pos, cs);
        for (int64_t& p : batch.pos) ++p;
      }
      const double batch_wall = wall_seconds() - w0, batch_cpu = cpu_seconds() - c0;
      const double tokens = static_cast<double>(B) * steps;
      std::printf("%3d %14.1f %14.1f %14.1f %14.1f %9.2f %9.2f\n", B, tokens / alone_wall,
                  tokens / batch_wall, tokens / alone_cpu, tokens / batch_cpu,
                  alone_wall / batch_wall, alone_cpu / batch_cpu);
      std::fflush(stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
