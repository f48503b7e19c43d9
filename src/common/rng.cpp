#include "common/rng.h"

#include <map>

namespace fastkv {

uint64_t Rng::next() {
  uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int64_t Rng::uniform(int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  if (span == 0) return static_cast<int64_t>(next());
  // Rejection sampling: no modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t x;
  do {
    x = next();
  } while (x >= limit);
  return lo + static_cast<int64_t>(x % span);
}

double Rng::uniform01() {
  return (next() >> 11) * (1.0 / 9007199254740992.0);
}

std::vector<int64_t> Rng::sample(int64_t n, int64_t k) {
  // Partial Fisher-Yates over a sparse permutation.
  std::map<int64_t, int64_t> swapped;
  std::vector<int64_t> out;
  auto get = [&](int64_t i) {
    auto it = swapped.find(i);
    return it == swapped.end() ? i : it->second;
  };
  for (int64_t i = 0; i < k && i < n; ++i) {
    int64_t j = uniform(i, n - 1);
    int64_t vi = get(i), vj = get(j);
    swapped[i] = vj;
    swapped[j] = vi;
    out.push_back(vj);
  }
  return out;
}

}  // namespace fastkv
