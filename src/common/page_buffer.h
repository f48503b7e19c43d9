// Large scratch mapped straight from the kernel (anonymous, private pages), for the prefill's
// buffers whose memory should follow their use:
//   - a page counts in the resident set only once it is written: rows never written read as
//     zero and cost nothing (the prefill's queries, of which a policy reads only the last rows);
//   - release() returns the pages at once (glibc's malloc keeps freed blocks below its dynamic
//     mmap threshold, up to 32 MiB, in its heap, so a freed std::vector may stay resident);
//     discard() returns the whole pages of a part of the buffer while the rest stays in use.
// Page-aligned, so also cache-line aligned (common/aligned.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastkv {

namespace detail {
void* map_zero_pages(std::size_t bytes);  // throws fastkv::Error when the system refuses
void unmap_pages(void* p, std::size_t bytes);
// Gives back the whole pages inside [p, p + bytes) (none when the range holds no whole page);
// they read as zero afterwards.
void discard_pages(void* p, std::size_t bytes);
}  // namespace detail

template <typename T>
class PageBuffer {
 public:
  PageBuffer() = default;
  ~PageBuffer() { release(); }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  // `count` zero elements; the old contents and pages are dropped.
  void reset(std::size_t count) {
    release();
    if (count == 0) return;
    data_ = static_cast<T*>(detail::map_zero_pages(count * sizeof(T)));
    size_ = count;
  }
  // Gives the pages back; size() is 0 after.
  void release() {
    if (data_ != nullptr) detail::unmap_pages(data_, size_ * sizeof(T));
    data_ = nullptr;
    size_ = 0;
  }
  // Gives back the whole pages inside elements [first, first + count) (clamped to size()): they
  // read as zero afterwards and cost nothing until written again. Elements sharing a page with
  // one outside the range keep their values.
  void discard(std::size_t first, std::size_t count) {
    if (first >= size_) return;
    if (count > size_ - first) count = size_ - first;
    detail::discard_pages(data_ + first, count * sizeof(T));
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace fastkv
