// Rng: splitmix64, a small, portable, seedable generator (the standard distributions are not
// portable across C++ libraries, so every draw is made here). Used by the RULER generator,
// `fastkv bench` prompts and `fastkv synth` weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace fastkv {

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next();
  // Uniform integer in [lo, hi].
  int64_t uniform(int64_t lo, int64_t hi);
  double uniform01();
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i)
      std::swap(v[i - 1], v[static_cast<size_t>(uniform(0, static_cast<int64_t>(i) - 1))]);
  }
  // k distinct indices of [0, n) in random order.
  std::vector<int64_t> sample(int64_t n, int64_t k);

 private:
  uint64_t s_;
};

}  // namespace fastkv
