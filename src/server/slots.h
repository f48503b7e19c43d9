// The generation slots of `fastkv serve`: at most `slots` requests generate at once; others
// wait first-come first-served in a queue of at most `max_queue`; a waiter whose client goes
// away leaves the queue. Each slot publishes the KV cache bytes its request holds now.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace fastkv::server {

class SlotPool {
 public:
  enum class Result { kAcquired, kQueueFull, kCancelled };

  // slots >= 1, max_queue >= 0 (0: no waiting, a busy server answers at once).
  SlotPool(int slots, int max_queue);

  // Takes a free slot (its index in *slot), waiting in line when all are busy. `cancelled`
  // is polled every `poll` while waiting; when it returns true the request leaves the queue.
  Result acquire(int* slot, const std::function<bool()>& cancelled,
                 std::chrono::milliseconds poll = std::chrono::milliseconds(25));
  void release(int slot);

  void set_kv_bytes(int slot, int64_t bytes);
  int64_t kv_bytes() const;  // sum over slots
  int size() const { return static_cast<int>(busy_.size()); }
  int busy() const;
  int queued() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> busy_;
  std::deque<uint64_t> line_;  // tickets of the waiters, first = next to be served
  uint64_t next_ticket_ = 0;
  int max_queue_;
  std::unique_ptr<std::atomic<int64_t>[]> kv_bytes_;
};

// Holds a slot for its lifetime; the slot's KV bytes are zeroed on release.
class SlotLease {
 public:
  SlotLease(SlotPool& pool, int slot) : pool_(pool), slot_(slot) {}
  ~SlotLease() { pool_.release(slot_); }
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  int slot() const { return slot_; }
  void set_kv_bytes(int64_t b) { pool_.set_kv_bytes(slot_, b); }

 private:
  SlotPool& pool_;
  int slot_;
};

}  // namespace fastkv::server
