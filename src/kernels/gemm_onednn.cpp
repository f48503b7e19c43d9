#include "kernels/gemm_onednn.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/aligned.h"
#include "common/error.h"
#include "common/bf16.h"
#include "kernels/onednn_engine.h"
#include "kernels/parallel.h"
#include "kernels/vec.h"

namespace fastkv::kernels {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& engine() { return onednn_engine(); }

// M used to let oneDNN choose the weight layout: a prefill-sized block of rows.
constexpr int kLayoutM = 256;

}  // namespace

dnnl::engine& onednn_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

struct OneDnnLinear::Impl {
  dnnl::memory::desc weights_md;  // the blocked bf16 layout chosen by oneDNN
  dnnl::memory weights;           // [in, out] logically, stored in weights_md
  struct Prim {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
    uint64_t last_use = 0;  // value of `uses` when it was last handed out (under mu)
  };
  mutable std::mutex mu;
  // Cached primitive per row count, at most kMaxCachedRowCounts of them: a server sees a new
  // prompt length with almost every request, and every cached primitive stays resident
  // (SmolLM2's 211 linears grew the process by 0.84 MiB per new prompt length, without end,
  // before the cache had a bound). The least recently used row count goes first; a caller
  // still running it keeps it alive through its shared_ptr.
  mutable std::map<int, std::shared_ptr<Prim>> by_m;
  mutable uint64_t uses = 0;

  std::shared_ptr<Prim> get(int m, int in, int out) const {
    std::lock_guard<std::mutex> lock(mu);
    ++uses;
    auto it = by_m.find(m);
    if (it != by_m.end()) {
      it->second->last_use = uses;
      return it->second;
    }
    if (by_m.size() >= OneDnnLinear::kMaxCachedRowCounts) {
      auto oldest = by_m.begin();
      for (auto j = by_m.begin(); j != by_m.end(); ++j) {
        if (j->second->last_use < oldest->second->last_use) oldest = j;
      }
      by_m.erase(oldest);
    }
    dnnl::memory::desc src({m, in}, dt::bf16, tag::ab);
    dnnl::memory::desc dst({m, out}, dt::f32, tag::ab);
    // A user scratchpad per calling thread: oneDNN's default one is shared by all primitives,
    // which races when two threads (server slots) run prefills at once.
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, dst), attr, engine());
    auto p = std::make_shared<Prim>(Prim{pd, dnnl::matmul(pd), uses});
    by_m.emplace(m, p);
    return p;
  }
};

bool cpu_has_native_bf16() {
  dnnl::memory::desc src({kLayoutM, 64}, dt::bf16, tag::ab);
  dnnl::memory::desc w({64, 64}, dt::bf16, tag::any);
  dnnl::memory::desc dst({kLayoutM, 64}, dt::f32, tag::ab);
  try {
    auto pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, w, dst), engine());
    std::string impl = pd.impl_info_str();
    return impl.find("ref") == std::string::npos;
  } catch (const dnnl::error&) {
    return false;
  }
}

OneDnnLinear::OneDnnLinear(const float* w, int in, int out, const float* bias)
    : in_(in), out_(out), impl_(std::make_unique<Impl>()) {
  if (bias) bias_.assign(bias, bias + out);
  // Let oneDNN choose the weight layout for a prefill-sized M, then reorder into it.
  dnnl::memory::desc src({kLayoutM, in}, dt::bf16, tag::ab);
  dnnl::memory::desc w_any({in, out}, dt::bf16, tag::any);
  dnnl::memory::desc dst({kLayoutM, out}, dt::f32, tag::ab);
  auto pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, w_any, dst), engine());
  impl_->weights_md = pd.weights_desc();
  // W[out, in] row-major is the [in, out] matrix in "ba" order.
  std::vector<uint16_t> wb(static_cast<size_t>(in) * out);
  for (size_t i = 0; i < wb.size(); ++i) wb[i] = f32_to_bf16(w[i]);
  dnnl::memory plain({{in, out}, dt::bf16, tag::ba}, engine(), wb.data());
  impl_->weights = dnnl::memory(impl_->weights_md, engine());
  dnnl::stream s(engine());
  dnnl::reorder(plain, impl_->weights).execute(s, plain, impl_->weights);
  s.wait();
}

OneDnnLinear::~OneDnnLinear() = default;

int64_t OneDnnLinear::weight_bytes() const {
  return static_cast<int64_t>(impl_->weights_md.get_size());
}

int OneDnnLinear::cached_row_counts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int>(impl_->by_m.size());
}

std::string OneDnnLinear::impl_name(int n) const {
  return impl_->get(n, in_, out_)->pd.impl_info_str();
}

const uint16_t* matmul_input_bf16(const float* x, int64_t count) {
  thread_local aligned_vector<uint16_t> xb;  // the calling thread's (workers have their own)
  xb.resize(static_cast<size_t>(count));
  uint16_t* dst = xb.data();
  constexpr int64_t kChunk = 8192;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
#pragma omp parallel for if (worth_parallel(count * 4))
  for (int64_t c = 0; c < chunks; ++c) {
    to_bf16(x + c * kChunk, 1.0f, dst + c * kChunk, std::min(kChunk, count - c * kChunk));
  }
  return dst;
}

void OneDnnLinear::forward(const float* x, int n, float* y) const {
  if (n <= 0) return;
  forward_bf16(matmul_input_bf16(x, static_cast<int64_t>(n) * in_), n, y);
}

void OneDnnLinear::forward_bf16(const uint16_t* xb, int n, float* y) const {
  if (n <= 0) return;
  auto p = impl_->get(n, in_, out_);
  dnnl::memory src({{n, in_}, dt::bf16, tag::ab}, engine(), const_cast<uint16_t*>(xb));
  dnnl::memory dst({{n, out_}, dt::f32, tag::ab}, engine(), y);
  thread_local std::vector<uint8_t> pad_buf;
  const dnnl::memory::desc pad_md = p->pd.scratchpad_desc();
  if (pad_buf.size() < pad_md.get_size()) pad_buf.resize(pad_md.get_size());
  dnnl::memory pad(pad_md, engine(), pad_buf.data());
  dnnl::stream s(engine());
  p->prim.execute(s, {{DNNL_ARG_SRC, src},
                      {DNNL_ARG_WEIGHTS, impl_->weights},
                      {DNNL_ARG_DST, dst},
                      {DNNL_ARG_SCRATCHPAD, pad}});
  s.wait();
  if (!bias_.empty()) {
    for (int i = 0; i < n; ++i) {
      float* yi = y + static_cast<int64_t>(i) * out_;
      for (int j = 0; j < out_; ++j) yi[j] += bias_[j];
    }
  }
}

}  // namespace fastkv::kernels
