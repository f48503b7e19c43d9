#include "common/page_buffer.h"

#include <sys/mman.h>

#include <cerrno>
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

}  // namespace fastkv::detail
