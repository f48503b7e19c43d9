// Cooperative cancellation of a long prefill, finer than its layers: a caller that may give up
// (the server, when a client disconnects) installs a check on its own thread for the duration
// of a prefill (ScopedCancelCheck); the prefill's long kernels (the causal attention tiles) poll
// it between their work units and stop handing out units once it says so, and the model polls
// it between token blocks and after attention, and throws kernels::Cancelled. The check is
// called on one thread at a time, but not always the installing one: it must be thread-safe
// (an atomic flag, a socket poll), and once it returned true it must keep returning true (a
// closed connection stays closed): the model asks it again after a kernel stopped early, before
// anything reads the kernel's unfinished output. Without a check nothing is polled.
//
// Why a thread-local and not a parameter: the check belongs to whoever runs the prefill, many
// layers above the kernels (Model::prefill -> attention), and every kernel signature and policy
// in between would otherwise carry it. The OpenMP workers read it through the pointer the
// calling thread takes before its parallel region (cancel_check()).
#pragma once

#include <atomic>
#include <functional>

namespace fastkv::kernels {

// Thrown by Model::prefill when the installed check returned true: the prefill is abandoned,
// its buffers freed on the way out; the cache it was filling is partial and must be dropped.
struct Cancelled {};

using CancelCheck = std::function<bool()>;

// The check installed on this thread (nullptr when none).
const CancelCheck* cancel_check();

// Installs `check` on this thread until destroyed (restoring the previous one; nests).
class ScopedCancelCheck {
 public:
  explicit ScopedCancelCheck(const CancelCheck* check);
  ~ScopedCancelCheck();
  ScopedCancelCheck(const ScopedCancelCheck&) = delete;
  ScopedCancelCheck& operator=(const ScopedCancelCheck&) = delete;

 private:
  const CancelCheck* previous_;
};

// One kernel call's view of the check, shared by its OpenMP workers: stop() polls the check
// (at most one thread at a time; a poll in progress is not waited for) and stays true once it
// returned true.
class CancelPoll {
 public:
  explicit CancelPoll(const CancelCheck* check) : check_(check) {}
  bool stop() {
    if (!check_) return false;
    if (stopped_.load(std::memory_order_relaxed)) return true;
    if (polling_.exchange(true, std::memory_order_acquire)) return false;
    // Another thread may have been told "stop" since the test above (its store is visible
    // here: it released polling_ after it).
    const bool s = stopped_.load(std::memory_order_relaxed) || (*check_)();
    if (s) stopped_.store(true, std::memory_order_relaxed);
    polling_.store(false, std::memory_order_release);
    return s;
  }
  bool stopped() const { return stopped_.load(std::memory_order_relaxed); }

 private:
  const CancelCheck* check_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> polling_{false};
};

// Throws Cancelled when this thread's check says so (the model's poll between blocks).
inline void throw_if_cancelled() {
  const CancelCheck* c = cancel_check();
  if (c && (*c)()) throw Cancelled{};
}

}  // namespace fastkv::kernels
