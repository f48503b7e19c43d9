#include "server/slots.h"

#include <algorithm>

#include "common/error.h"

namespace fastkv::server {

SlotPool::SlotPool(int slots, int max_queue)
    : busy_(slots > 0 ? slots : 0, false),
      max_queue_(max_queue),
      kv_bytes_(new std::atomic<int64_t>[slots > 0 ? slots : 1]) {
  if (slots < 1) fail("--slots must be >= 1, got ", slots);
  if (max_queue < 0) fail("--queue must be >= 0, got ", max_queue);
  for (int i = 0; i < slots; ++i) kv_bytes_[i] = 0;
}

SlotPool::Result SlotPool::acquire(int* slot, const std::function<bool()>& cancelled,
                                   std::chrono::milliseconds poll) {
  std::unique_lock<std::mutex> lock(mu_);
  auto free_slot = [&] {
    return static_cast<int>(std::find(busy_.begin(), busy_.end(), false) - busy_.begin());
  };
  // Nobody waiting and a slot free: take it.
  if (line_.empty()) {
    int s = free_slot();
    if (s < size()) {
      busy_[s] = true;
      *slot = s;
      return Result::kAcquired;
    }
  }
  if (static_cast<int>(line_.size()) >= max_queue_) return Result::kQueueFull;
  const uint64_t ticket = next_ticket_++;
  line_.push_back(ticket);
  for (;;) {
    if (line_.front() == ticket) {
      int s = free_slot();
      if (s < size()) {
        busy_[s] = true;
        line_.pop_front();
        *slot = s;
        cv_.notify_all();  // the next in line may find another free slot
        return Result::kAcquired;
      }
    }
    cv_.wait_for(lock, poll);
    bool gone = false;
    if (cancelled) {
      lock.unlock();
      gone = cancelled();
      lock.lock();
    }
    if (gone) {
      line_.erase(std::find(line_.begin(), line_.end(), ticket));
      cv_.notify_all();
      return Result::kCancelled;
    }
  }
}

void SlotPool::release(int slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_.at(slot) = false;
    kv_bytes_[slot] = 0;
  }
  cv_.notify_all();
}

void SlotPool::set_kv_bytes(int slot, int64_t bytes) {
  kv_bytes_[slot] = bytes;
}

int64_t SlotPool::kv_bytes() const {
  int64_t sum = 0;
  for (int i = 0; i < size(); ++i) sum += kv_bytes_[i];
  return sum;
}

int SlotPool::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(std::count(busy_.begin(), busy_.end(), true));
}

int SlotPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(line_.size());
}

}  // namespace fastkv::server
