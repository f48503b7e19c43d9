// When a loop is worth splitting across threads. An OpenMP region costs a few microseconds
// (far more when the machine is loaded and a worker is descheduled), so loops run in parallel
// only when their total work, in rough multiply-adds, is well above that.
#pragma once

#include <cstdint>

namespace fastkv::kernels {

constexpr int64_t kMinParallelWork = int64_t{1} << 18;

inline bool worth_parallel(int64_t work) { return work >= kMinParallelWork; }

}  // namespace fastkv::kernels
