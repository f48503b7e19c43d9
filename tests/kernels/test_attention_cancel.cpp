// Cancellation inside the causal attention kernels (kernels/cancel.h): with a check installed
// on the calling thread that says "stop", the kernel stops handing out its work units, so part
// of the output is never written; without one (or while it says "go on") every row is.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cancel.h"
#include "test_util.h"

namespace fastkv {
namespace {

using Kernel = void (*)(const float*, const float*, const float*, int, int, int, int, float*);

void f32_kernel(const float* q, const float* k, const float* v, int n, int H, int G, int d,
                float* out) {
  kernels::causal_attention(q, k, v, n, H, G, d, out);
}
void bf16_kernel(const float* q, const float* k, const float* v, int n, int H, int G, int d,
                 float* out) {
  kernels::causal_attention_bf16(q, k, v, n, H, G, d, out);
}

// Rows of out [n, H, d] still holding the NaN they were filled with.
int unwritten_rows(const std::vector<float>& out, int d) {
  int rows = 0;
  for (size_t r = 0; r < out.size() / d; ++r) rows += std::isnan(out[r * d]) ? 1 : 0;
  return rows;
}

// Runs `kernel` on n tokens with out pre-filled with NaN, under `check` (none when null);
// returns how many of the n·H output rows were not written.
int run(Kernel kernel, const kernels::CancelCheck* check) {
  const int n = 1024, H = 4, G = 2, d = 64;
  const std::vector<float> q = test::uniform(static_cast<size_t>(n) * H * d, 1);
  const std::vector<float> k = test::uniform(static_cast<size_t>(n) * G * d, 2);
  const std::vector<float> v = test::uniform(static_cast<size_t>(n) * G * d, 3);
  std::vector<float> out(static_cast<size_t>(n) * H * d, std::nanf(""));
  kernels::ScopedCancelCheck scope(check);
  kernel(q.data(), k.data(), v.data(), n, H, G, d, out.data());
  return unwritten_rows(out, d);
}

void expect_cancellable(Kernel kernel) {
  EXPECT_EQ(run(kernel, nullptr), 0);  // no check: every row
  std::atomic<int> calls{0};
  const kernels::CancelCheck never = [&] {
    ++calls;
    return false;
  };
  EXPECT_EQ(run(kernel, &never), 0);  // a check that never fires: every row, and it was asked
  EXPECT_GT(calls.load(), 0);
  calls = 0;
  // Fires at its third call and stays fired (as a closed connection does): the kernel stops
  // early, so rows are left unwritten, and it is not asked again once it said stop.
  const kernels::CancelCheck third = [&] { return ++calls >= 3; };
  const int left = run(kernel, &third);
  EXPECT_GT(left, 0);
  EXPECT_EQ(calls.load(), 3);
}

TEST(AttentionCancel, F32KernelStopsBetweenBlocks) { expect_cancellable(&f32_kernel); }
TEST(AttentionCancel, Bf16KernelStopsBetweenTiles) { expect_cancellable(&bf16_kernel); }

TEST(AttentionCancel, ScopedCheckNestsAndRestores) {
  const kernels::CancelCheck a = [] { return false; }, b = [] { return true; };
  EXPECT_EQ(kernels::cancel_check(), nullptr);
  {
    kernels::ScopedCancelCheck sa(&a);
    EXPECT_EQ(kernels::cancel_check(), &a);
    {
      kernels::ScopedCancelCheck sb(&b);
      EXPECT_EQ(kernels::cancel_check(), &b);
      EXPECT_THROW(kernels::throw_if_cancelled(), kernels::Cancelled);
    }
    EXPECT_EQ(kernels::cancel_check(), &a);
    EXPECT_NO_THROW(kernels::throw_if_cancelled());
  }
  EXPECT_EQ(kernels::cancel_check(), nullptr);
}

}  // namespace
}  // namespace fastkv
