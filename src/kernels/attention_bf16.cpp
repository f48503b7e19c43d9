// Causal attention of the bf16 backend: flash-attention-style tiles whose two products run as
// oneDNN bf16 matmuls (AMX where the CPU has it), with the online softmax in f32 between them.
//
// Per layer, K and V are converted once to bf16 in a per-KV-head layout, zero-padded to whole
// key tiles (KeysValuesBf16, filled a block of tokens at a time by the prefill):
//   kb, vb: [G, n_pad, d]   (n_pad = n rounded up to kKeys)
// A call attends the queries of a block of tokens [first, first + count) to the keys added so
// far; each query's work is the same wherever its block starts (its key tiles are aligned to
// kKeys; a tile it sees nothing of adds zeros), so blocks give the whole call's output.
// Work items are (KV head, block of kQueries tokens); the g query heads of that KV head share
// every K/V tile, so a block is R = kQueries · g rows:
//   qb:  [R, d]        bf16(q · 1/sqrt(d)), row t·g + hh = token i0 + t, query head kvh·g + hh
//   s:   [R, kKeys]    f32 scores of one key tile (Q·Kᵀ), then probabilities after the softmax
//   p:   [R, kKeys]    bf16 probabilities (masked entries 0)
//   o:   [R, d]        f32 P·V of the tile
//   acc: [R, d]        f32 running output; m, l: [R] running max and sum
// Both matmul shapes are fixed per model (R, kKeys, d), so their primitives are made once.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "common/aligned.h"
#include "common/error.h"
#include "kernels/attention.h"
#include "kernels/cancel.h"
#include "kernels/onednn_engine.h"
#include "kernels/parallel.h"
#include "kernels/vec.h"

namespace fastkv::kernels {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

constexpr int kQueries = 64;  // tokens per query block
constexpr int kKeys = 256;    // keys per tile

struct TilePrims {
  dnnl::matmul qk;  // [R, d] x [d, kKeys] (Kᵀ: strides {1, d}) -> [R, kKeys] f32
  dnnl::matmul pv;  // [R, kKeys] x [kKeys, d] -> [R, d] f32
  dnnl::memory::desc q_md, kt_md, s_md, p_md, v_md, o_md;
  dnnl::memory::desc qk_scratch_md, pv_scratch_md;  // user scratchpads: one per thread
  std::string impl;
};

const TilePrims& prims_for(int rows, int d) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::unique_ptr<TilePrims>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{rows, d}];
  if (!slot) {
    auto t = std::make_unique<TilePrims>();
    const dnnl::memory::dim R = rows, K = kKeys, D = d;
    t->q_md = dnnl::memory::desc({R, D}, dt::bf16, tag::ab);
    t->kt_md = dnnl::memory::desc({D, K}, dt::bf16, dnnl::memory::dims{1, D});
    t->s_md = dnnl::memory::desc({R, K}, dt::f32, tag::ab);
    t->p_md = dnnl::memory::desc({R, K}, dt::bf16, tag::ab);
    t->v_md = dnnl::memory::desc({K, D}, dt::bf16, tag::ab);
    t->o_md = dnnl::memory::desc({R, D}, dt::f32, tag::ab);
    // Threads run these primitives concurrently: oneDNN's default scratchpad is shared, so each
    // thread passes its own.
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto qk_pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(t->q_md, t->kt_md, t->s_md),
                                              attr, onednn_engine());
    auto pv_pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(t->p_md, t->v_md, t->o_md),
                                              attr, onednn_engine());
    t->qk_scratch_md = qk_pd.scratchpad_desc();
    t->pv_scratch_md = pv_pd.scratchpad_desc();
    t->impl = std::string(qk_pd.impl_info_str()) + " / " + pv_pd.impl_info_str();
    t->qk = dnnl::matmul(qk_pd);
    t->pv = dnnl::matmul(pv_pd);
    slot = std::move(t);
  }
  return *slot;
}

// Per-thread scratch of one work item (sizes fixed per model, reused across calls).
struct Scratch {
  std::vector<uint8_t> qk_pad, pv_pad;  // oneDNN scratchpads
  aligned_vector<uint16_t> qb, p;  // oneDNN reads these and the two below as tiles
  aligned_vector<float> s, o;
  std::vector<float> acc, m, l;
  void resize(int rows, int d) {
    qb.resize(static_cast<size_t>(rows) * d);
    p.resize(static_cast<size_t>(rows) * kKeys);
    s.resize(static_cast<size_t>(rows) * kKeys);
    o.resize(static_cast<size_t>(rows) * d);
    acc.resize(static_cast<size_t>(rows) * d);
    m.resize(rows);
    l.resize(rows);
  }
};

}  // namespace

std::string causal_attention_bf16_impl(int H, int G, int d) {
  return prims_for(kQueries * (H / G), d).impl;
}

void KeysValuesBf16::reset(int n, int G, int d) {
  n_ = n;
  G_ = G;
  d_ = d;
  added_ = 0;
  n_pad_ = (static_cast<int64_t>(n) + kKeys - 1) / kKeys * kKeys;
  k_.reset(static_cast<size_t>(G) * n_pad_ * d);  // zero pages: the padding stays zero
  v_.reset(k_.size());
}

void KeysValuesBf16::add(const float* k, const float* v, int count) {
  if (count < 0 || added_ + count > n_) {
    fail("KeysValuesBf16: adding ", count, " tokens to ", added_, " of ", n_);
  }
  const int G = G_, d = d_, i0 = added_;
  const int64_t kv_stride = static_cast<int64_t>(G) * d;
  uint16_t* kb = k_.data();
  uint16_t* vb = v_.data();
#pragma omp parallel for collapse(2) if (worth_parallel(static_cast<int64_t>(count) * kv_stride * 4))
  for (int h = 0; h < G; ++h) {
    for (int i = 0; i < count; ++i) {
      const int64_t dst = (h * n_pad_ + i0 + i) * d;
      to_bf16(k + i * kv_stride + static_cast<int64_t>(h) * d, 1.0f, kb + dst, d);
      to_bf16(v + i * kv_stride + static_cast<int64_t>(h) * d, 1.0f, vb + dst, d);
    }
  }
  added_ += count;
}

void KeysValuesBf16::discard_head(int h) {
  if (h < 0 || h >= G_) fail("KeysValuesBf16: no KV head ", h, " of ", G_);
  const size_t head = static_cast<size_t>(n_pad_) * d_;
  k_.discard(h * head, head);
  v_.discard(h * head, head);
}

void KeysValuesBf16::release() {
  k_.release();
  v_.release();
  n_ = added_ = 0;
  n_pad_ = 0;
}

void causal_attention_bf16(const float* q, const float* k, const float* v, int n, int H, int G,
                           int d, float* out, const Window& window) {
  KeysValuesBf16 kv;
  kv.reset(n, G, d);
  kv.add(k, v, n);
  causal_attention_bf16(q, 0, n, kv, H, out, window);
}

void causal_attention_bf16(const float* q, int first_query, int count, const KeysValuesBf16& kv,
                           int H, float* out, const Window& window) {
  const int G = kv.heads(), d = kv.head_dim();
  const int n = first_query + count;  // tokens whose keys the block's queries may see
  if (first_query < 0 || count < 0 || n > kv.added()) {
    fail("causal_attention_bf16: queries [", first_query, ", ", n, ") need their keys, ",
         kv.added(), " added");
  }
  const int g = H / G;
  const int rows = kQueries * g;
  const int64_t q_stride = static_cast<int64_t>(H) * d;
  const int64_t n_pad = kv.padded();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const TilePrims& tp = prims_for(rows, d);
  // first[i]: the first key token i sees (window_first_keys; empty without a window). A block's
  // key tiles start at the tile holding its first token's first key: tiles wholly before the
  // band are never computed.
  const std::vector<int> first = window_first_keys(window, n);
  // oneDNN reads the keys and values in place (a matmul's inputs are const)
  uint16_t* kb = const_cast<uint16_t*>(kv.k());
  uint16_t* vb = const_cast<uint16_t*>(kv.v());

  const int n_qblocks = (count + kQueries - 1) / kQueries;
  // A cancelled prefill (kernels/cancel.h) stops handing out blocks; the caller throws.
  CancelPoll cancel(cancel_check());
#pragma omp parallel if (worth_parallel(static_cast<int64_t>(count) * n * H * d))
  {
    thread_local Scratch sc;
    sc.resize(rows, d);
    dnnl::stream stream(onednn_engine());
    dnnl::memory q_mem(tp.q_md, onednn_engine(), sc.qb.data());
    dnnl::memory s_mem(tp.s_md, onednn_engine(), sc.s.data());
    dnnl::memory p_mem(tp.p_md, onednn_engine(), sc.p.data());
    dnnl::memory o_mem(tp.o_md, onednn_engine(), sc.o.data());
    dnnl::memory kt_mem(tp.kt_md, onednn_engine(), kb);
    dnnl::memory v_mem(tp.v_md, onednn_engine(), vb);
    sc.qk_pad.resize(std::max<size_t>(1, tp.qk_scratch_md.get_size()));
    sc.pv_pad.resize(std::max<size_t>(1, tp.pv_scratch_md.get_size()));
    dnnl::memory qk_pad(tp.qk_scratch_md, onednn_engine(), sc.qk_pad.data());
    dnnl::memory pv_pad(tp.pv_scratch_md, onednn_engine(), sc.pv_pad.data());
    // Later query blocks see more keys: hand them out first, one at a time.
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int qb_rev = 0; qb_rev < n_qblocks; ++qb_rev) {
      for (int kvh = 0; kvh < G; ++kvh) {
        if (cancel.stop()) continue;
        const int qb = n_qblocks - 1 - qb_rev;
        const int r0 = qb * kQueries, qn = std::min(kQueries, count - r0);  // rows of q, out
        const int i0 = first_query + r0;                                     // their first token
        // Q block: row t·g + hh <- q[r0 + t, kvh·g + hh] / sqrt(d); rows past qn are zero.
        for (int t = 0; t < kQueries; ++t) {
          uint16_t* dst = sc.qb.data() + static_cast<int64_t>(t) * g * d;
          if (t < qn) {
            to_bf16(q + (r0 + t) * q_stride + static_cast<int64_t>(kvh) * g * d, scale, dst,
                    static_cast<int64_t>(g) * d);
          } else {
            std::fill(dst, dst + static_cast<int64_t>(g) * d, 0);
          }
        }
        std::fill(sc.acc.begin(), sc.acc.end(), 0.0f);
        std::fill(sc.m.begin(), sc.m.end(), -std::numeric_limits<float>::infinity());
        std::fill(sc.l.begin(), sc.l.end(), 0.0f);
        const int keys = i0 + qn;  // keys visible to the block's last token
        // the tile (aligned to kKeys: tiles lie in the zero-padded [n_pad, d] rows) that holds
        // the block's first visible key; first[] ascends, so later tokens see nothing earlier
        const int j_begin = first.empty() ? 0 : first[i0] / kKeys * kKeys;
        for (int j0 = j_begin; j0 < keys; j0 += kKeys) {
          const int64_t base = (static_cast<int64_t>(kvh) * n_pad + j0) * d;
          kt_mem.set_data_handle(kb + base);
          v_mem.set_data_handle(vb + base);
          tp.qk.execute(stream, {{DNNL_ARG_SRC, q_mem}, {DNNL_ARG_WEIGHTS, kt_mem},
                                 {DNNL_ARG_DST, s_mem}, {DNNL_ARG_SCRATCHPAD, qk_pad}});
          stream.wait();
          for (int r = 0; r < qn * g; ++r) {
            float* sr = sc.s.data() + static_cast<int64_t>(r) * kKeys;
            uint16_t* pr = sc.p.data() + static_cast<int64_t>(r) * kKeys;
            // keys [lo, visible) of the tile are visible to token i0 + t: causal (j <= i0 + t),
            // and not before the window's first key
            const int visible = std::max(0, std::min(kKeys, i0 + r / g + 1 - j0));
            const int lo = first.empty() ? 0 : std::clamp(first[i0 + r / g] - j0, 0, visible);
            if (visible == lo) {
              std::fill(pr, pr + kKeys, 0);
              continue;
            }
            const float new_m = std::max(sc.m[r], max_of(sr + lo, visible - lo));
            const float corr = exp_nonpositive(sc.m[r] - new_m);
            sc.l[r] = sc.l[r] * corr +
                      exp_shift_sum_to_bf16(sr + lo, visible - lo, new_m, pr + lo);
            sc.m[r] = new_m;
            if (corr != 1.0f) scale_in_place(sc.acc.data() + static_cast<int64_t>(r) * d, corr, d);
            std::fill(pr, pr + lo, 0);
            std::fill(pr + visible, pr + kKeys, 0);
          }
          for (int r = qn * g; r < rows; ++r) {
            std::fill(sc.p.begin() + static_cast<int64_t>(r) * kKeys,
                      sc.p.begin() + static_cast<int64_t>(r + 1) * kKeys, 0);
          }
          tp.pv.execute(stream, {{DNNL_ARG_SRC, p_mem}, {DNNL_ARG_WEIGHTS, v_mem},
                                 {DNNL_ARG_DST, o_mem}, {DNNL_ARG_SCRATCHPAD, pv_pad}});
          stream.wait();
          for (int r = 0; r < qn * g; ++r) {
            axpy(1.0f, sc.o.data() + static_cast<int64_t>(r) * d,
                 sc.acc.data() + static_cast<int64_t>(r) * d, d);
          }
        }
        for (int r = 0; r < qn * g; ++r) {
          const int t = r / g, hh = r % g;
          float* dst = out + (r0 + t) * q_stride + static_cast<int64_t>(kvh * g + hh) * d;
          const float* src = sc.acc.data() + static_cast<int64_t>(r) * d;
          const float inv = 1.0f / sc.l[r];
          for (int j = 0; j < d; ++j) dst[j] = src[j] * inv;
        }
      }
    }
  }
}

}  // namespace fastkv::kernels
