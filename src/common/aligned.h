// Buffers that start on a cache line (64 bytes). oneDNN's kernels and our AVX-512 decoders move
// whole 64-byte vectors; a std::vector's data from glibc's malloc sits 16 bytes past a line once
// the block is large (mmap'd), so every such load or store then touches two lines. Measured on
// the quantised prefill tiles (docs/benchmarks.md, session 9): aligned, the 1B Q4_0 prefill at
// 512 tokens went from 0.97-1.02x to 1.03-1.12x our bf16 backend.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace fastkv {

inline constexpr std::size_t kCacheLine = 64;

// A std::allocator that aligns every block to kCacheLine (C++17 aligned operator new).
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}  // NOLINT: rebinding, as std::allocator
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{kCacheLine}); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};

// A std::vector whose data() is cache-line aligned.
template <typename T>
using aligned_vector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace fastkv
