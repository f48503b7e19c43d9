// A prefill abandoned through the calling thread's cancel check (kernels/cancel.h) throws
// kernels::Cancelled before its first layer finishes when the check fires inside that layer's
// attention, leaves the model usable, and a check that never fires changes nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

#include "cache/kv_cache.h"
#include "kernels/cancel.h"
#include "method/method.h"
#include "model/model.h"
#include "test_util.h"

namespace fastkv {
namespace {

std::vector<int32_t> prompt(int n, int vocab) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(1 + (i * 13) % (vocab - 1));
  return p;
}

void expect_cancellable(kernels::Backend backend) {
  SCOPED_TRACE(kernels::backend_name(backend));
  LoadOptions lo;
  lo.backend = backend;
  auto m = Model::load(test::shared_path("models/stories260K.gguf"), lo);
  const std::vector<int32_t> tokens = prompt(512, m->config().n_vocab);
  auto full = [&] { return MethodRegistry::instance().create("full", {}, m->config().n_layer); };

  // Reference: no check installed.
  KVCache ref_cache;
  const std::vector<float> ref = m->prefill(tokens, *full(), ref_cache).logits;

  // Fires from its second call on: the first is the poll before layer 0's Q/K/V block, the
  // second comes from inside layer 0's attention. No layer may finish.
  std::atomic<int> calls{0};
  const kernels::CancelCheck second = [&] { return ++calls >= 2; };
  int layers_done = 0;
  KVCache cache;
  {
    kernels::ScopedCancelCheck scope(&second);
    EXPECT_THROW(m->prefill(tokens, *full(), cache, {}, [&](const PrefillProgress&) { ++layers_done; }),
                 kernels::Cancelled);
  }
  EXPECT_EQ(layers_done, 0);
  EXPECT_GE(calls.load(), 2);

  // A check that never fires: the same logits as without one, bit for bit.
  const kernels::CancelCheck never = [] { return false; };
  KVCache again;
  std::vector<float> got;
  {
    kernels::ScopedCancelCheck scope(&never);
    got = m->prefill(tokens, *full(), again).logits;
  }
  EXPECT_EQ(got, ref);
}

TEST(PrefillCancel, StopsInsideTheFirstLayerF32) { expect_cancellable(kernels::Backend::kF32); }
TEST(PrefillCancel, StopsInsideTheFirstLayerBf16) { expect_cancellable(kernels::Backend::kBf16); }

}  // namespace
}  // namespace fastkv
