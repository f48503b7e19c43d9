#include "common/page_buffer.h"

#include <sys/mman.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "common/error.h"

namespace fastkv::detail {

void* map_zero_pages(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) {
    fail("cannot map ", bytes, " bytes of scratch memory: ", std::strerror(errno));
  }
  return p;
}

void unmap_pages(void* p, std::size_t bytes) { munmap(p, bytes); }

void discard_pages(void* p, std::size_t bytes) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t first = (begin + page - 1) / page * page;  // the first whole page
  const uintptr_t last = (begin + bytes) / page * page;       // past the last whole page
  if (last <= first) return;
  // Private anonymous pages: MADV_DONTNEED frees them, and they fault back in as zero pages.
  if (madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) {
    fail("cannot give back ", last - first, " bytes of scratch memory: ", std::strerror(errno));
  }
}

}  // namespace fastkv::detail
