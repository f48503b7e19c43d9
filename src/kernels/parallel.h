// When a loop is worth splitting across threads. An OpenMP region costs a few microseconds
// (far more when the machine is loaded and a worker is descheduled), so loops run in parallel
// only when their total work, in rough multiply-adds, is well above that.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

#include <cstdint>

namespace fastkv::kernels {

constexpr int64_t kMinParallelWork = int64_t{1} << 18;

inline bool worth_parallel(int64_t work) { return work >= kMinParallelWork; }

// The OpenMP thread count, and setting it; 1 and nothing in a build without OpenMP (the clang
// fuzz builds), so that code above the kernels need not guard its own calls.
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
inline void set_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

}  // namespace fastkv::kernels
