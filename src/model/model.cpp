#include "model/model.h"

#include "io/quant.h"
#include "kernels/parallel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#include "common/error.h"
#include "common/page_buffer.h"
#include "kernels/attention.h"
#include "kernels/cancel.h"
#include "kernels/gemm_onednn.h"
#include "model/tensor_names.h"

namespace fastkv {
namespace {

// Reads a 2-D weight stored as GGUF ne = [in, out] into row-major [out, in] f32.
std::vector<float> load_matrix(const gguf::File& f, const std::string& name, int in, int out) {
  const gguf::TensorInfo& t = f.tensor(name);
  if (t.ne.size() != 2 || t.ne[0] != in || t.ne[1] != out) {
    f.error(cat("tensor '", name, "' has shape ", t.shape_string(), ", expected [", in, ", ", out,
                "]"));
  }
  return f.read_f32(t);
}

// The kernels' block format for a GGUF type QuantLinear reads in place, or nullopt.
std::optional<kernels::QuantFormat> quant_format_of(gguf::TensorType t) {
  switch (t) {
    case gguf::TensorType::Q8_0:
      return kernels::QuantFormat::kQ8_0;
    case gguf::TensorType::Q4_0:
      return kernels::QuantFormat::kQ4_0;
    case gguf::TensorType::Q4_1:
      return kernels::QuantFormat::kQ4_1;
    case gguf::TensorType::Q5_0:
      return kernels::QuantFormat::kQ5_0;
    case gguf::TensorType::Q5_1:
      return kernels::QuantFormat::kQ5_1;
    case gguf::TensorType::Q4_K:
      return kernels::QuantFormat::kQ4_K;
    case gguf::TensorType::Q5_K:
      return kernels::QuantFormat::kQ5_K;
    case gguf::TensorType::Q6_K:
      return kernels::QuantFormat::kQ6_K;
    default:
      return std::nullopt;
  }
}

// A linear layer from the 2-D weight `name` (GGUF ne = [in, out]) on `backend`. kQuant: a Q8_0,
// Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K weight stays in the file's mapping (QuantLinear
// reads its blocks in place); any other type goes to `dense` (bf16, or f32 where the CPU lacks
// native bf16).
kernels::Linear load_linear(const gguf::File& f, const std::string& name, int in, int out,
                            std::vector<float> bias, kernels::Backend backend,
                            kernels::Backend dense) {
  if (backend == kernels::Backend::kQuant) {
    const gguf::TensorInfo& t = f.tensor(name);
    if (t.ne.size() != 2 || t.ne[0] != in || t.ne[1] != out) {
      f.error(cat("tensor '", name, "' has shape ", t.shape_string(), ", expected [", in, ", ",
                  out, "]"));
    }
    if (const auto fmt = quant_format_of(t.type)) {
      // (The reader already rejects rows that are not whole blocks; kept as a clear message.)
      if (in % kernels::quant_block_weights(*fmt) != 0) {
        f.error(cat("tensor '", name, "': rows of ", in, " elements are not whole ",
                    gguf::type_name(t.type), " blocks"));
      }
      kernels::Linear layer(t.data, *fmt, in, out, std::move(bias));
      // An interleaved copy (QuantLinear): the file's pages of the tensor are not read again.
      if (layer.owns_blocks()) f.release_pages(t.data, t.nbytes);
      return layer;
    }
    return kernels::Linear(load_matrix(f, name, in, out), in, out, std::move(bias), dense);
  }
  return kernels::Linear(load_matrix(f, name, in, out), in, out, std::move(bias), backend);
}

std::vector<float> load_vector(const gguf::File& f, const std::string& name, int n) {
  const gguf::TensorInfo& t = f.tensor(name);
  if (t.n_elements() != n || t.ne.size() != 1) {
    f.error(cat("tensor '", name, "' has shape ", t.shape_string(), ", expected [", n, "]"));
  }
  return f.read_f32(t);
}

// Adds the seconds since the last lap to a counter: the per-step times of PrefillStats.
class Lap {
 public:
  void to(double& counter) {
    const auto now = std::chrono::steady_clock::now();
    counter += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// The prefill's per-token work (norms, projections, each block's attention, MLP) runs over
// blocks of at most kBlockRows tokens, so its buffers (the widest: the MLP's F per token) do not
// grow with the prompt. The blocks of n tokens are equal (ceil(n / kBlockRows) of them): a short
// last block would take a different GEMM path (QuantLinear's integer dots at <= 24 rows).
// (Blocks of 512 rows would halve the MLP's buffers, but cost 4-7% of the quantised prefill:
// every block decodes the weights again. docs/benchmarks.md, "Session 13".)
constexpr int kBlockRows = 1024;

// Rows per block for n tokens: n split into ceil(n / kBlockRows) blocks of equal size (the last
// one up to blocks - 1 smaller).
int block_rows(int n) {
  const int blocks = (n + kBlockRows - 1) / kBlockRows;
  return blocks <= 1 ? n : (n + blocks - 1) / blocks;
}

}  // namespace

namespace detail {

// Activations of one layer for n live tokens (all row-major, token-major), sized for the widest
// layer (H*d, G*d and F may differ per layer). With B = min(n, kBlockRows) rows a block:
//   hidden  [n, D]     residual stream, for the whole pass
//   xnorm   [B, D]     normed input of the current block
//   work    one buffer whose parts live in turn (the attention half's and the MLP's buffers are
//           never all allocated at once):
//     attention half (per block of tokens: Q/K/V, attention, o_proj; then select, store cache):
//       k [n, G*d]  every live token's keys when whole_keys (the f32 path's attention, a method
//                   that reads keys, H2O's column sums), else [B, G*d] the block's (bf16 path)
//       v [n, G*d]  every live token's values on the f32 path, else [B, G*d] the block's
//       qb [B, H*d] the block's queries, then its attention output written over them (each
//                   query block's rows are read before its output is written, in both kernels)
//       oproj [B, D]  the block's output projection
//     MLP (k, v dead): gate [B, F], up [B, F], mproj [B, D] over up's memory (up is dead once
//           the activation has read it; its own place after up when D > F)
//           The pages past the attention half's part go back to the system before the last
//           layer (discard_mlp_pages), whose MLP runs only for the rows the output reads.
//   queries [n, H*d]  the query rows a policy reads (its last queries_read rows), written as
//                     their block passes; the pages of rows never written cost no memory
//                     (PageBuffer), so the whole q of an n-token layer (128 MiB at 16K on a 1B
//                     Llama) is never held
//   kv      the bf16 path's K/V [G, n_pad, d] (bf16) of every live token, from the layer's
//           first block until its cache is stored: the attention reads it, and the cache takes
//           its rows from it, giving each KV head's pages back once stored (store_cache)
//   colsum  [H, n]     H2O's attention column sums, when the policy wants them
// Decode and decode_batch (n = B rows) write the attention output into a buffer of their own
// [n, H*d]: attend_rows makes no promise about its output overlapping its query.
struct Activations {
  std::vector<float> hidden;  // [n, D]
  std::vector<float> xnorm;   // [B, D]
  PageBuffer<float> work;     // the parts above
  PageBuffer<float> queries;  // [n, H*d], rows a policy reads
  kernels::KeysValuesBf16 kv;
  float *k = nullptr, *v = nullptr, *qb = nullptr, *oproj = nullptr;  // attention half, in work
  float *gate = nullptr, *up = nullptr, *mproj = nullptr;  // MLP, in work
  bool whole_keys = true, whole_values = true;  // k, v hold every live token's rows
  std::vector<int32_t> pos;   // [n] original positions
  std::vector<float> colsum;  // [H, n] attention column sums, for policies that want them
  int64_t qd_max = 0;         // the widest layer's H*d

  // Where the keys and values of the block of tokens from i0 go (rows of kvd = G*d floats).
  float* k_rows(int i0, int64_t kvd) const { return k + (whole_keys ? i0 * kvd : 0); }
  float* v_rows(int i0, int64_t kvd) const { return v + (whole_values ? i0 * kvd : 0); }

  // n rows; whole_k / whole_v as whole_keys / whole_values above (for n <= kBlockRows, as in
  // decode, they change nothing).
  void resize(int n, const ModelConfig& c, bool whole_k = true, bool whole_v = true) {
    int64_t qd = 0, kvd = 0, ff = 0;
    for (const LayerConfig& lc : c.layers) {
      qd = std::max<int64_t>(qd, static_cast<int64_t>(lc.n_head) * lc.head_dim);
      kvd = std::max<int64_t>(kvd, static_cast<int64_t>(lc.n_head_kv) * lc.head_dim);
      ff = std::max<int64_t>(ff, lc.d_ff);
    }
    qd_max = qd;
    // Blocks of any live count up to n have at most min(n, kBlockRows) rows (TSP shrinks n
    // during the pass; block_rows of a smaller count can be larger).
    whole_keys = whole_k;
    whole_values = whole_v;
    const int64_t N = n, B = std::min(n, kBlockRows), D = c.d_model;
    const int64_t key_rows = whole_k ? N : B, value_rows = whole_v ? N : B;
    hidden.resize(static_cast<size_t>(N * D));
    xnorm.resize(static_cast<size_t>(B * D));
    attention_floats = (key_rows + value_rows) * kvd + B * (qd + D);
    const bool proj_in_up = D <= ff;
    const int64_t mlp = B * (2 * ff + (proj_in_up ? 0 : D));
    work.reset(static_cast<size_t>(std::max(attention_floats, mlp)));
    float* w = work.data();
    k = w;
    v = k + key_rows * kvd;
    qb = v + value_rows * kvd;
    oproj = qb + B * qd;
    gate = w;
    up = w + B * ff;
    mproj = proj_in_up ? up : w + 2 * B * ff;
  }
  // Gives back the pages of work that only the MLP's buffers use (they read as zero after).
  void discard_mlp_pages() {
    work.discard(static_cast<size_t>(attention_floats), work.size());
  }

 private:
  int64_t attention_floats = 0;  // the attention half's part of work
};

}  // namespace detail

namespace {
using detail::Activations;

// norm -> Q/K/V projections (+bias) (+QK-norm) -> RoPE at the tokens' original positions, for
// the m tokens [i0, i0 + m):
//   xnorm = rmsnorm(hidden[i0 : i0 + m])        [m, D]
//   qb = xnorm · Wqᵀ (+bq)                      [m, H, d]
//   k, v of the tokens likewise                 [m, G, d] (a.k_rows(i0), a.v_rows(i0))
//   q[i, h] = rmsnorm(q[i, h]) · q_norm         per head, when qk_norm (k likewise)
//   q[i, h], k[i, g] rotated by RoPE at pos[i]
//   q *= attn_scale · sqrt(d) when the layer's query scale is not the kernels' 1/sqrt(d)
void project_qkv(const ModelConfig& c, const LayerConfig& lc, const LayerWeights& lw,
                 const kernels::RopeTable& rope, int i0, int m, Activations& a) {
  const int64_t qd = static_cast<int64_t>(lc.n_head) * lc.head_dim,
                kvd = static_cast<int64_t>(lc.n_head_kv) * lc.head_dim;
  float* q = a.qb;
  float* k = a.k_rows(i0, kvd);
  float* v = a.v_rows(i0, kvd);
  kernels::rmsnorm(a.hidden.data() + static_cast<int64_t>(i0) * c.d_model, lw.attn_norm.data(), m,
                   c.d_model, c.rms_eps, a.xnorm.data());
  kernels::forward_shared_input({{&lw.wq, q}, {&lw.wk, k}, {&lw.wv, v}}, a.xnorm.data(), m);
  if (lc.qk_norm) {
    kernels::rmsnorm(q, lw.q_norm.data(), m * lc.n_head, lc.head_dim, c.rms_eps, q);
    kernels::rmsnorm(k, lw.k_norm.data(), m * lc.n_head_kv, lc.head_dim, c.rms_eps, k);
  }
#pragma omp parallel for if (kernels::worth_parallel(static_cast<int64_t>(m) * (qd + kvd) * 4))
  for (int i = 0; i < m; ++i) {
    rope.apply(q + i * qd, lc.n_head, k + i * kvd, lc.n_head_kv, lc.head_dim, a.pos[i0 + i]);
  }
  if (lc.attn_scale > 0) {
    const float q_scale =
        static_cast<float>(lc.attn_scale * std::sqrt(static_cast<double>(lc.head_dim)));
    if (q_scale != 1.0f) {
      for (int64_t i = 0; i < static_cast<int64_t>(m) * qd; ++i) q[i] *= q_scale;
    }
  }
}

// out[m, D] = rmsnorm(out) · w when the post-norm w is present (empty = none), in place.
void post_norm(const std::vector<float>& w, const ModelConfig& c, int m, float* out) {
  if (!w.empty()) kernels::rmsnorm(out, w.data(), m, c.d_model, c.rms_eps, out);
}

// o_proj (+post-norm) -> residual for the m tokens [i0, i0 + m), attn: their [m, H*d] rows:
//   hidden[i0 : i0 + m] += post_attn_norm(attn · Woᵀ)
void output_projection(const ModelConfig& c, const LayerWeights& lw, int i0, int m,
                       const float* attn, Activations& a) {
  lw.wo.forward(attn, m, a.oproj);
  post_norm(lw.post_attn_norm, c, m, a.oproj);
  kernels::add_inplace(a.hidden.data() + static_cast<int64_t>(i0) * c.d_model, a.oproj,
                       static_cast<int64_t>(m) * c.d_model);
}

// What the attention half of a prefill layer hands to the policy beside K and V.
struct PolicyNeeds {
  int reads = 0;         // the last `reads` query rows go to a.queries
  bool colsum = false;   // H2O's column sums into a.colsum
};

// The attention half of a prefill layer over its n live tokens, a block of block_rows(n) tokens
// at a time:
//   norm -> Q/K/V -> RoPE (project_qkv)
//   qb = causal attention of the block's queries to the keys of every token up to its own
//        (within the layer's window, if any), over qb
//   o_proj (+post-norm) -> residual (output_projection)
// The attention and o_proj run for the tokens from out_first on only (the last layer: nothing
// reads the other tokens' output; their K/V and the policy's queries are still made).
// A token's attention reads only the keys up to its own, which its block and the earlier ones
// have projected, and o_proj changes hidden rows that no later block reads: so each block goes
// all the way through, and the layer's whole q never exists. The block's query rows that the
// policy reads are kept aside first (a.queries), and added to the column sums when it wants
// them. On the bf16 path every block's K/V go to a.kv, which the attention reads and which
// outlives this function (store_cache takes the cache's rows from it). Adds the column sums'
// FLOPs to *scoring_flops, and each step's time to sec. This thread's cancel check is polled
// before every block (kernels/cancel.h; throws kernels::Cancelled), and after the attention
// kernels, which leave a cancelled block early.
void attention_half(const ModelConfig& c, const LayerConfig& lc, const LayerWeights& lw,
                    const kernels::RopeTable& rope, bool bf16_path, int n, int out_first,
                    const PolicyNeeds& needs, Activations& a, double* scoring_flops,
                    PrefillStats::Seconds& sec, Lap& lap) {
  const int H = lc.n_head, G = lc.n_head_kv, d = lc.head_dim;
  const int64_t qd = static_cast<int64_t>(H) * d, kvd = static_cast<int64_t>(G) * d;
  // the f32 kernel and the column sums read the keys (and values) of every token so far
  if (!a.whole_keys && (needs.colsum || !bf16_path)) {
    fail("the prefill holds one block of keys, but the attention or its column sums need all");
  }
  kernels::Window window;
  window.size = lc.window;
  window.key_pos = a.pos.data();
  if (bf16_path) a.kv.reset(n, G, d);
  if (needs.colsum) a.colsum.assign(static_cast<size_t>(H) * n, 0.0f);
  const int first_read = n - needs.reads;
  const int B = block_rows(n);
  for (int i0 = 0; i0 < n; i0 += B) {
    kernels::throw_if_cancelled();
    const int m = std::min(B, n - i0);
    project_qkv(c, lc, lw, rope, i0, m, a);
    lap.to(sec.qkv);
    // what the policy reads of the queries, before the attention output goes over them
    if (i0 + m > first_read) {
      const int r0 = std::max(i0, first_read);
      std::copy(a.qb + (r0 - i0) * qd, a.qb + m * qd, a.queries.data() + r0 * qd);
    }
    if (needs.colsum) {
      kernels::add_causal_attention_column_sums(a.qb, i0, m, a.k, H, G, d, a.colsum.data(), n);
    }
    if (bf16_path) a.kv.add(a.k_rows(i0, kvd), a.v_rows(i0, kvd), m);
    // the block's tokens whose output is read: [r0, i0 + m)
    const int r0 = std::max(i0, out_first), rows = i0 + m - r0;
    if (rows <= 0) {
      lap.to(sec.attention);
      continue;
    }
    float* q = a.qb + (r0 - i0) * qd;
    if (bf16_path) {
      kernels::causal_attention_bf16(q, r0, rows, a.kv, H, q, window);
    } else {
      kernels::causal_attention(q, r0, rows, a.k, a.v, H, G, d, q, window);
    }
    kernels::throw_if_cancelled();
    lap.to(sec.attention);
    output_projection(c, lw, r0, rows, q, a);
    lap.to(sec.mlp);
  }
  if (needs.colsum) *scoring_flops += 4.0 * H * d * (static_cast<double>(n) * (n + 1) / 2);
}

// gate[m, F] = act(gate[m, F], up[m, F]), the MLP's activation, in place.
void activation(const LayerConfig& lc, int m, Activations& a) {
  switch (lc.activation) {
    case Activation::kSwiGLU:
      kernels::swiglu(a.gate, a.up, static_cast<int64_t>(m) * lc.d_ff, a.gate);
      return;
    case Activation::kGeGLU:
      kernels::geglu_tanh(a.gate, a.up, static_cast<int64_t>(m) * lc.d_ff, a.gate);
      return;
  }
}

// norm -> MLP (+post-norm) -> residual for the tokens [first, n), in blocks of
// block_rows(n - first) tokens (every token's MLP is independent of the others'; its buffers
// take the place of the attention half's, see Activations):
//   hidden += post_ffn_norm(down(act(gate(x), up(x)))),  x = rmsnorm(hidden)
// poll_cancel (prefill only): this thread's cancel check is polled before every block
// (kernels/cancel.h; throws kernels::Cancelled). Decode steps never poll: a server runs other
// requests' decode steps from inside a prefill, and those must not be abandoned half-way.
void mlp(const ModelConfig& c, const LayerConfig& lc, const LayerWeights& lw, int first, int n,
         Activations& a, bool poll_cancel = false) {
  const int D = c.d_model;
  const int B = block_rows(n - first);
  for (int i0 = first; i0 < n; i0 += B) {
    if (poll_cancel) kernels::throw_if_cancelled();
    const int m = std::min(B, n - i0);
    const int64_t md = static_cast<int64_t>(m) * D;
    float* hidden = a.hidden.data() + static_cast<int64_t>(i0) * D;
    kernels::rmsnorm(hidden, lw.ffn_norm.data(), m, D, c.rms_eps, a.xnorm.data());
    kernels::forward_shared_input({{&lw.w_gate, a.gate}, {&lw.w_up, a.up}}, a.xnorm.data(), m);
    activation(lc, m, a);
    lw.w_down.forward(a.gate, m, a.mproj);
    post_norm(lw.post_ffn_norm, c, m, a.mproj);
    kernels::add_inplace(hidden, a.mproj, md);
  }
}

// Writes the rows a policy kept into the layer's cache. Cache head ch serves query heads
// [ch*r, (ch+1)*r) with r = H / cache_heads, and holds rows of KV head (ch*r) / g. On the bf16
// path (from_copy) the rows come from a.kv, the bits narrowing a.k / a.v would give, and each
// KV head's pages of it go back once the last cache head reading it is stored, so the cache
// grows as the copy shrinks; a.kv is empty afterwards. Else from a.k, a.v (every live token's).
void store_cache(const LayerConfig& c, const LayerDecision& dec, bool from_copy, Activations& a,
                 int n, int64_t headroom, LayerCache& lc) {
  const int C = dec.cache_heads;
  const int d = c.head_dim, G = c.n_head_kv, g = c.group_size();
  // Each cache head must serve query heads of a single KV head: H % C == 0 and g % (H/C) == 0.
  if (C <= 0 || c.n_head % C != 0 || g % (c.n_head / C) != 0) {
    fail("policy returned ", C, " cache heads for a model with ", c.n_head, " query and ", G,
         " KV heads");
  }
  if (from_copy && a.kv.added() != n) {
    fail("the cache's rows are not all in the attention's bf16 copy");
  }
  if (!dec.keep_all && static_cast<int>(dec.keep.size()) != C) {
    fail("policy returned keep lists for ", dec.keep.size(), " heads, expected ", C);
  }
  const int r = c.n_head / C;
  lc.reset(C, d);
  for (int ch = 0; ch < C; ++ch) {
    const int kvh = (ch * r) / g;
    const int64_t rows = dec.keep_all ? n : static_cast<int64_t>(dec.keep[ch].size());
    lc.reserve(ch, rows + headroom);  // room for the decode steps to come (KVCache)
    for (int64_t j = 0; j < rows; ++j) {
      const int32_t idx = dec.keep_all ? static_cast<int32_t>(j) : dec.keep[ch][j];
      if (idx < 0 || idx >= n) fail("policy kept row ", idx, " of ", n, " live tokens");
      if (from_copy) {
        lc.append_bf16(ch, a.kv.key_row(kvh, idx), a.kv.value_row(kvh, idx), a.pos[idx]);
      } else {
        const int64_t off = (static_cast<int64_t>(idx) * G + kvh) * d;
        lc.append(ch, a.k + off, a.v + off, a.pos[idx]);
      }
    }
    if (from_copy && (ch + 1 == C || ((ch + 1) * r) / g != kvh)) a.kv.discard_head(kvh);
  }
  a.kv.release();
}

// TSP: keeps only the live tokens listed in `sel` (ascending indices) in hidden and pos.
void gather_live(const std::vector<int32_t>& sel, int n, int D, Activations& a) {
  for (size_t j = 0; j < sel.size(); ++j) {
    if (sel[j] < 0 || sel[j] >= n || (j > 0 && sel[j] <= sel[j - 1])) {
      fail("policy propagated an invalid token list (must be ascending indices < ", n, ")");
    }
  }
  for (size_t j = 0; j < sel.size(); ++j) {
    if (static_cast<int32_t>(j) != sel[j]) {
      std::memmove(a.hidden.data() + j * D, a.hidden.data() + static_cast<int64_t>(sel[j]) * D,
                   sizeof(float) * D);
      a.pos[j] = a.pos[sel[j]];
    }
  }
  a.pos.resize(sel.size());
}

// Query-key pairs causal attention computes for the queries of live tokens [from, n), at
// positions pos[n] (ascending), with a sliding window of `window` positions (0 = none): token i
// sees the keys j <= i with pos[i] - pos[j] < window, a contiguous range (banded prefill does no
// work outside it).
double attention_pairs(const std::vector<int32_t>& pos, int n, int window, int from) {
  if (window <= 0) {
    return static_cast<double>(n) * (n + 1) / 2 - static_cast<double>(from) * (from + 1) / 2;
  }
  double pairs = 0;
  for (int i = 0, first = 0; i < n; ++i) {
    while (pos[i] - pos[first] >= window) ++first;
    if (i >= from) pairs += i - first + 1;
  }
  return pairs;
}

// A sliding-window layer's cache (docs/fastkv.md, "Hybrid models"): every live token whose
// original position the last live token still sees (pos > pos[n-1] - window), per KV head,
// whatever the policy chose; the policy's keep lists apply to global layers only. Later
// positions only move the window forward, so no decoded token needs a row dropped here.
LayerDecision window_decision(const LayerConfig& lc, int n, const Activations& a) {
  LayerDecision dec;
  dec.cache_heads = lc.n_head_kv;
  dec.keep_all = false;
  std::vector<int32_t> rows;
  for (int i = 0; i < n; ++i) {
    if (a.pos[i] > a.pos[n - 1] - lc.window) rows.push_back(i);
  }
  dec.keep.assign(lc.n_head_kv, rows);
  return dec;
}

// Extra rows a sliding-window layer's decode cache may hold past its window before the rows
// no query can see any more are dropped: the cache holds at most window + kWindowSlack rows
// per head, and the compaction runs once per kWindowSlack decoded tokens, not every token.
constexpr int64_t kWindowSlack = 64;

}  // namespace

kernels::Backend auto_backend(const gguf::File& f) {
  int64_t quant_bytes = 0, total_bytes = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.ne.size() != 2 || t.name.rfind("blk.", 0) != 0) continue;
    total_bytes += static_cast<int64_t>(t.nbytes);
    if (quant_format_of(t.type)) quant_bytes += static_cast<int64_t>(t.nbytes);
  }
  if (total_bytes > 0 && 2 * quant_bytes > total_bytes) return kernels::Backend::kQuant;
  return kernels::cpu_has_native_bf16() ? kernels::Backend::kBf16 : kernels::Backend::kF32;
}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& opts) {
  std::unique_ptr<Model> m(new Model(gguf::File::open(path)));
  const gguf::File& f = m->file_;
  ModelConfig& c = m->config_;
  c = ModelConfig::from_gguf(f);
  m->backend_ = opts.backend;
  // kQuant: weights of other types, attention and the KV cache as on the bf16 path where the
  // CPU has native bf16, else as on the f32 path.
  const kernels::Backend dense =
      opts.backend == kernels::Backend::kQuant
          ? (kernels::cpu_has_native_bf16() ? kernels::Backend::kBf16 : kernels::Backend::kF32)
          : opts.backend;
  m->bf16_path_ = dense == kernels::Backend::kBf16;
  const int D = c.d_model;
  Weights& w = m->w_;
  {
    const gguf::TensorInfo& t = f.tensor(kTokenEmbdName);
    if (t.ne.size() != 2 || t.ne[0] != D || t.ne[1] != c.n_vocab) {
      f.error(cat("tensor '", kTokenEmbdName, "' has shape ", t.shape_string(), ", expected [", D,
                  ", ", c.n_vocab, "]"));
    }
    const gguf::TypeInfo* ti = gguf::type_info(static_cast<uint32_t>(t.type));
    if (ti == nullptr || !ti->can_dequantize) {
      f.error(cat("tensor '", kTokenEmbdName, "' has type ", gguf::type_name(t.type),
                  ", which fastkv cannot read"));
    }
    // A row must be whole blocks (GGUF stores rows of ne[0] elements in whole blocks).
    if (D % static_cast<int>(ti->block_size) != 0) {
      f.error(cat("tensor '", kTokenEmbdName, "': rows of ", D, " elements are not whole ",
                  gguf::type_name(t.type), " blocks"));
    }
    w.token_embd = {t.data, t.type, gguf::bytes_for(t.type, D), c.n_vocab, D};
  }
  w.output_norm = load_vector(f, kOutputNormName, D);
  // A tied LM head reads the whole table once here, into its own (backend) layout.
  w.lm_head = load_linear(f, c.tied_embeddings ? kTokenEmbdName : kOutputName, D, c.n_vocab, {},
                          opts.backend, dense);
  if (c.tied_embeddings && w.lm_head.owns_blocks()) w.token_embd.tied = w.lm_head.quant();
  w.layers.resize(c.n_layer);
  m->rope_.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerConfig& lc = c.layers[l];
    const int qd = lc.n_head * lc.head_dim, kvd = lc.n_head_kv * lc.head_dim;
    // A weight of this layer by its table entry; an optional one the layer lacks is empty.
    auto vec = [&](LayerTensor t, int n) {
      return has_tensor(t, lc) ? load_vector(f, tensor_name(t, l), n) : std::vector<float>{};
    };
    auto linear = [&](LayerTensor t, int in, int out, std::optional<LayerTensor> bias) {
      std::vector<float> b = bias ? vec(*bias, out) : std::vector<float>{};
      return load_linear(f, tensor_name(t, l), in, out, std::move(b), opts.backend, dense);
    };
    LayerWeights& lw = w.layers[l];
    lw.attn_norm = vec(LayerTensor::kAttnNorm, D);
    lw.wq = linear(LayerTensor::kQ, D, qd, LayerTensor::kQBias);
    lw.wk = linear(LayerTensor::kK, D, kvd, LayerTensor::kKBias);
    lw.wv = linear(LayerTensor::kV, D, kvd, LayerTensor::kVBias);
    lw.q_norm = vec(LayerTensor::kQNorm, lc.head_dim);
    lw.k_norm = vec(LayerTensor::kKNorm, lc.head_dim);
    lw.wo = linear(LayerTensor::kO, qd, D, std::nullopt);
    lw.post_attn_norm = vec(LayerTensor::kPostAttnNorm, D);
    lw.ffn_norm = vec(LayerTensor::kFfnNorm, D);
    lw.w_gate = linear(LayerTensor::kGate, D, lc.d_ff, std::nullopt);
    lw.w_up = linear(LayerTensor::kUp, D, lc.d_ff, std::nullopt);
    lw.w_down = linear(LayerTensor::kDown, lc.d_ff, D, std::nullopt);
    lw.post_ffn_norm = vec(LayerTensor::kPostFfnNorm, D);
    kernels::RopeTable& rope = m->rope_[l];
    rope.rope_dim = lc.rope_dim;
    rope.theta = lc.rope_theta;
    rope.freq_scale = lc.rope_freq_scale;
    rope.factors = lc.rope_freq_factors;
    rope.neox = lc.rope_style == RopeStyle::kNeox;
  }
  if (f.has("tokenizer.ggml.model")) m->tokenizer_ = Tokenizer::from_gguf(f);
  // The tokenizer has its own tables now, and the config reads no array of this length (its
  // arrays are per layer): free the file's parsed vocab, merges and token types.
  m->file_.drop_arrays(4096);
  // Every dense weight now lives in the model's own buffers: drop the file's pages from the
  // resident set (otherwise a bf16 model is counted twice). The mapping is read-only
  // (PROT_READ, MAP_PRIVATE, never written), so MADV_DONTNEED only drops clean pages: the token
  // embeddings and kQuant's blocks, read in place, fault back in from the file on first use.
  f.release_tensor_pages();
  return m;
}

const Tokenizer& Model::require_tokenizer() const {
  if (!tokenizer_) file_.error("the model file has no tokenizer (tokenizer.ggml.model is missing)");
  return *tokenizer_;
}

void Model::check_token(int32_t t) const {
  if (t < 0 || t >= config_.n_vocab) {
    fail("token id ", t, " is outside the vocabulary (", config_.n_vocab, " tokens)");
  }
}

void EmbeddingTable::row(int32_t token, float* out) const {
  if (token < 0 || token >= rows) fail("embedding row ", token, " is outside [0, ", rows, ")");
  if (tied != nullptr) {
    thread_local std::vector<uint8_t> bytes;  // [row_bytes] the row in the file's layout
    bytes.resize(row_bytes);
    tied->copy_row(token, bytes.data());
    gguf::dequantize_row(type, bytes.data(), out, dim);
    return;
  }
  gguf::dequantize_row(type, data + static_cast<uint64_t>(token) * row_bytes, out, dim);
}

void Model::embed(const int32_t* tokens, int n, float* out) const {
  const int D = config_.d_model;
  for (int i = 0; i < n; ++i) {
    check_token(tokens[i]);
    float* row = out + static_cast<int64_t>(i) * D;
    w_.token_embd.row(tokens[i], row);
    if (config_.embed_scale != 1.0f) {
      for (int j = 0; j < D; ++j) row[j] *= config_.embed_scale;
    }
  }
}

void Model::lm_head(const float* hidden_rows, int rows, float* logits) const {
  std::vector<float> normed(static_cast<size_t>(rows) * config_.d_model);
  kernels::rmsnorm(hidden_rows, w_.output_norm.data(), rows, config_.d_model, config_.rms_eps,
                   normed.data());
  w_.lm_head.forward(normed.data(), rows, logits);
  if (const float cap = config_.final_logit_softcap; cap > 0) {
    const int64_t count = static_cast<int64_t>(rows) * config_.n_vocab;
    for (int64_t i = 0; i < count; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  }
}

namespace {
// Linear-layer FLOPs of one token through layer lc (2 per multiply-add): its Q/K/V projections,
// which every live token needs (its K/V go to the cache, its query may go to the policy), and
// the rest (o_proj, the MLP), which the last layer runs only for the tokens the output reads.
double layer_qkv_flops(const ModelConfig& c, const LayerConfig& lc) {
  const double D = c.d_model, qd = lc.n_head * lc.head_dim, kvd = lc.n_head_kv * lc.head_dim;
  return 2.0 * D * (qd + 2 * kvd);
}
double layer_rest_flops(const ModelConfig& c, const LayerConfig& lc) {
  const double D = c.d_model, qd = lc.n_head * lc.head_dim;
  return 2.0 * (qd * D + 3 * D * lc.d_ff);
}
double layer_linear_flops(const ModelConfig& c, const LayerConfig& lc) {
  return layer_qkv_flops(c, lc) + layer_rest_flops(c, lc);
}
}  // namespace

double Model::linear_flops_per_token() const {
  const ModelConfig& c = config_;
  double f = 0;
  for (const LayerConfig& lc : c.layers) f += layer_linear_flops(c, lc);
  return f;
}

double Model::full_prefill_flops(int n) const {
  return prefill_flops(std::vector<int>(config_.n_layer, n));
}

double Model::prefill_flops(const std::vector<int>& live) const {
  const ModelConfig& c = config_;
  if (live.size() != c.layers.size()) {
    fail("prefill_flops needs one live count per layer (", c.layers.size(), "), got ",
         live.size());
  }
  double f = 0;
  for (size_t i = 0; i < live.size(); ++i) {
    const LayerConfig& lc = c.layers[i];
    const double n = live[i];
    // causal: the queries of the first m tokens make m(m+1)/2 query-key pairs per head, Q·Kᵀ
    // and P·V; a sliding-window layer's band has min(j+1, w) keys for token j (tokens at
    // consecutive positions: an upper bound for a propagated set spread over more positions)
    const double w = lc.window;
    auto pairs = [&](double m) {
      return lc.local() && m > w ? w * (w + 1) / 2 + (m - w) * w : m * (m + 1) / 2;
    };
    // the last layer: attention, o_proj and MLP for the last token only (the logits' row)
    const double out = i + 1 == live.size() ? std::min(n, 1.0) : n;
    f += layer_qkv_flops(c, lc) * n + layer_rest_flops(c, lc) * out +
         4.0 * lc.n_head * lc.head_dim * (pairs(n) - pairs(n - out));
  }
  return f + 2.0 * c.d_model * c.n_vocab;
}

int64_t Model::decode_weight_bytes() const {
  const ModelConfig& c = config_;
  int64_t b = w_.lm_head.weight_bytes();
  int64_t norms = c.d_model;  // output_norm
  for (const LayerWeights& lw : w_.layers) {
    for (const kernels::Linear* l : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) {
      b += l->weight_bytes();
    }
    for (const std::vector<float>* v : {&lw.attn_norm, &lw.q_norm, &lw.k_norm, &lw.post_attn_norm,
                                        &lw.ffn_norm, &lw.post_ffn_norm}) {
      norms += static_cast<int64_t>(v->size());
    }
  }
  // One embedding row, as stored (dequantised on lookup).
  return b + norms * static_cast<int64_t>(sizeof(float)) +
         static_cast<int64_t>(w_.token_embd.row_bytes);
}

std::optional<std::vector<int32_t>> Model::run_pass(int pass, const std::vector<int32_t>& tokens,
                                                    const std::vector<int32_t>& positions,
                                                    CompressionMethod& policy, KVCache& cache,
                                                    bool rows_fixed, int out_rows, Activations& a,
                                                    PrefillStats& st,
                                                    const PrefillProgressFn& progress) const {
  const ModelConfig& c = config_;
  int n = static_cast<int>(tokens.size());  // live tokens
  a.pos = positions;
  embed(tokens.data(), n, a.hidden.data());
  PrefillStats::Seconds& sec = st.seconds;
  Lap lap;
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerConfig& lc = c.layers[l];
    const LayerWeights& lw = w_.layers[l];
    st.live_tokens.push_back(n);
    // what the policy needs of the queries: its last `reads` rows, and the column sums (H2O;
    // none for a local layer: its cache is its window, whatever the policy would choose)
    PolicyNeeds needs;
    needs.reads = std::clamp(policy.queries_read(l, n), 0, n);
    needs.colsum = !lc.local() && policy.wants_attention_column_sums(l, n);
    // The last layer's output is read only for the last out_rows tokens (the logits' rows, the
    // hidden tail): the others' K/V still go to the cache and their queries to the policy, but
    // their attention, o_proj and MLP would be read by nothing. That layer's MLP is then a few
    // rows, so the pages only the MLP's buffers use go back first: at the end of a long
    // prefill, when the cache is whole, the prefill holds no MLP buffers of n tokens.
    const bool last = l + 1 == c.n_layer;
    const int out_first = last ? std::max(0, n - out_rows) : 0;
    if (last) a.discard_mlp_pages();
    // norm -> qkv -> rope -> attention over the layer's K/V of its n live tokens -> o_proj ->
    // residual, a block of tokens at a time (a cancelled prefill throws in there)
    attention_half(c, lc, lw, rope_[l], bf16_path_, n, out_first, needs, a, &st.scoring_flops,
                   sec, lap);
    st.attention_flops +=
        4.0 * lc.n_head * lc.head_dim * attention_pairs(a.pos, n, lc.window, out_first);
    LayerInput in{l, c.n_layer, st.n_prompt, n, lc.n_head, lc.n_head_kv, lc.head_dim,
                  a.queries.data(), a.whole_keys ? a.k : nullptr, a.pos.data()};
    in.pass = pass;
    in.window = lc.window;
    in.attn_colsum = needs.colsum ? a.colsum.data() : nullptr;
    // select: what this layer's cache keeps, and which tokens go on
    LayerDecision dec = policy.on_layer(in);
    lap.to(sec.select);
    st.scoring_flops += static_cast<double>(dec.scoring_flops);
    if (dec.restart) {  // two-pass policies: prefill() restarts
      PrefillStats::Propagation step{pass, l, /*restart=*/true, {}};
      for (int32_t idx : *dec.restart) {
        if (idx < 0 || idx >= n) fail("policy restarted with token ", idx, " of ", n);
        step.positions.push_back(a.pos[idx]);
      }
      st.propagations.push_back(std::move(step));
      return std::move(*dec.restart);
    }
    // store cache (a sliding-window layer keeps its window instead of the policy's choice)
    store_cache(lc, lc.local() ? window_decision(lc, n, a) : dec, bf16_path_, a, n,
                cache.decode_headroom(), cache.layer(l));
    st.kept_rows.push_back(cache.layer(l).rows());
    lap.to(sec.cache);
    // norm -> MLP (+post-norm) -> residual, the n live tokens (the last layer: from out_first)
    mlp(c, lc, lw, out_first, n, a, /*poll_cancel=*/true);
    st.linear_flops += layer_qkv_flops(c, lc) * n + layer_rest_flops(c, lc) * (n - out_first);
    lap.to(sec.mlp);
    // gather: token-selective propagation
    if (dec.propagate) {
      if (rows_fixed) fail("logits of chosen rows need a policy that keeps every token");
      // after the last layer the output reads the last out_rows of the tokens that go on, and
      // only the tokens from out_first on went through that layer's attention and MLP (FastKV
      // always keeps its window, the last tokens)
      const std::vector<int32_t>& sel = *dec.propagate;
      const size_t read = std::min(sel.size(), static_cast<size_t>(out_rows));
      if (last && !sel.empty() && sel[sel.size() - read] < out_first) {  // sel ascends
        fail("policy '", policy.name(), "' propagated a token set after the last layer that ",
             "drops one of the last ", out_rows, " live tokens, which the output reads");
      }
      gather_live(*dec.propagate, n, c.d_model, a);
      if (static_cast<int>(dec.propagate->size()) < n) {
        st.propagations.push_back({pass, l, /*restart=*/false, a.pos});
      }
      n = static_cast<int>(dec.propagate->size());
    }
    lap.to(sec.gather);
    if (progress) progress({pass, l + 1, c.n_layer, st.n_prompt, n});
  }
  return std::nullopt;
}

PrefillOutput Model::prefill(const std::vector<int32_t>& tokens, CompressionMethod& policy, KVCache& cache,
                             const std::vector<int>& logit_rows,
                             const PrefillProgressFn& progress, int hidden_tail) const {
  const ModelConfig& c = config_;
  const int N = static_cast<int>(tokens.size());
  if (N == 0) fail("prefill needs at least one token");
  if (hidden_tail < 0) fail("hidden_tail must be >= 0, got ", hidden_tail);
  for (int r : logit_rows) {
    if (r < 0 || r >= N) fail("logit row ", r, " is outside the prompt (", N, " tokens)");
  }
  PrefillOutput out;
  PrefillStats& st = out.stats;
  st.n_prompt = N;
  Activations a;
  // the bf16 path holds every token's f32 keys only for a method that reads them, and its
  // values never (the attention and the cache read the bf16 copy)
  a.resize(N, c, !bf16_path_ || policy.reads_keys(), !bf16_path_);
  a.queries.reset(static_cast<size_t>(N) * a.qd_max);
  const bool bf16_cache = bf16_path_;
  const bool rows_fixed = !logit_rows.empty();
  // the last live tokens the output reads: from the first logit row on (every token stays live
  // when rows are fixed), else the last token and the hidden tail
  const int out_rows =
      rows_fixed ? N - *std::min_element(logit_rows.begin(), logit_rows.end())
                 : std::max(1, hidden_tail);
  cache.reset(c.n_layer, bf16_cache);
  policy.begin(N, c.n_layer);

  // Pass 0: the prompt at positions 0..N-1.
  std::vector<int32_t> positions(N);
  std::iota(positions.begin(), positions.end(), 0);
  std::vector<int32_t> pass_tokens = tokens;  // the tokens of the last pass
  std::optional<std::vector<int32_t>> restart =
      run_pass(0, pass_tokens, positions, policy, cache, rows_fixed, out_rows, a, st, progress);
  if (restart) {
    // Two-pass policies (GemFilter): start again from layer 0 on the chosen tokens only,
    // positions 0..T-1; the first pass's caches are discarded.
    if (rows_fixed) fail("logits of chosen rows need a policy that keeps every token");
    const int n = static_cast<int>(a.pos.size());  // live tokens where the pass stopped
    const std::vector<int32_t>& chosen = *restart;  // ascending indices into the live tokens
    std::vector<int32_t> next_tokens;
    for (size_t j = 0; j < chosen.size(); ++j) {
      const int32_t idx = chosen[j];
      if (idx < 0 || idx >= n) fail("policy restarted with token ", idx, " of ", n);
      if (j > 0 && idx <= chosen[j - 1]) fail("restart indices must ascend");
      next_tokens.push_back(pass_tokens[a.pos[idx]]);
    }
    if (next_tokens.empty()) fail("policy restarted with no tokens");
    pass_tokens = std::move(next_tokens);
    positions.resize(pass_tokens.size());
    std::iota(positions.begin(), positions.end(), 0);
    cache.reset(c.n_layer, bf16_cache);
    st.live_tokens.clear();  // per-layer stats describe the final pass; FLOPs add up both
    st.kept_rows.clear();
    st.passes = 2;
    // Pass 1: the chosen tokens.
    if (run_pass(1, pass_tokens, positions, policy, cache, rows_fixed, out_rows, a, st,
                 progress)) {
      fail("policy '", policy.name(), "' asked for a third prefill pass");
    }
  }
  const int n = static_cast<int>(a.pos.size());  // live tokens after the last layer
  st.propagated = n;
  st.final_positions = a.pos;
  st.next_position = st.passes == 1 ? N : static_cast<int64_t>(pass_tokens.size());

  Lap lap;
  std::vector<int> rows = logit_rows.empty() ? std::vector<int>{n - 1} : logit_rows;
  std::vector<float> sel(rows.size() * static_cast<size_t>(c.d_model));
  for (size_t j = 0; j < rows.size(); ++j) {
    std::memcpy(sel.data() + j * c.d_model,
                a.hidden.data() + static_cast<int64_t>(rows[j]) * c.d_model,
                sizeof(float) * c.d_model);
  }
  out.logits.resize(rows.size() * static_cast<size_t>(c.n_vocab));
  lm_head(sel.data(), static_cast<int>(rows.size()), out.logits.data());
  st.linear_flops += 2.0 * c.d_model * c.n_vocab * rows.size();
  if (hidden_tail > 0) {
    const int tail = std::min(hidden_tail, n);
    out.final_hidden.resize(static_cast<size_t>(tail) * c.d_model);
    kernels::rmsnorm(a.hidden.data() + static_cast<int64_t>(n - tail) * c.d_model,
                     w_.output_norm.data(), tail, c.d_model, c.rms_eps, out.final_hidden.data());
  }
  lap.to(st.seconds.lm_head);
  return out;
}

std::vector<float> Model::decode(int32_t token, int64_t pos, KVCache& cache) const {
  const ModelConfig& c = config_;
  if (cache.n_layer() != c.n_layer) fail("decode needs a cache filled by prefill");
  Activations a;
  a.resize(1, c);
  std::vector<float> attn(static_cast<size_t>(a.qd_max));  // [1, H*d] the attention output
  a.pos = {static_cast<int32_t>(pos)};
  embed(&token, 1, a.hidden.data());
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerConfig& lc = c.layers[l];
    const LayerWeights& lw = w_.layers[l];
    const int d = lc.head_dim, g = lc.group_size();
    project_qkv(c, lc, lw, rope_[l], 0, 1, a);
    // store cache: the new token's K/V row in every cache head
    LayerCache& cl = cache.layer(l);
    const int C = cl.n_heads();
    const int r = lc.n_head / C;
    for (int ch = 0; ch < C; ++ch) {
      const int kvh = (ch * r) / g;
      cl.append(ch, a.k + static_cast<int64_t>(kvh) * d, a.v + static_cast<int64_t>(kvh) * d,
                static_cast<int32_t>(pos));
      // a sliding-window layer: drop the rows no later query sees (bounded memory)
      if (lc.local() && cl.len(ch) > lc.window + kWindowSlack) {
        cl.drop_before(ch, static_cast<int32_t>(pos - lc.window + 1));
      }
    }
    // attention: the r query heads of cache head ch against its rows (within the window)
#pragma omp parallel for if (kernels::worth_parallel(cl.rows() * d * 2))
    for (int ch = 0; ch < C; ++ch) {
      const float* qh = a.qb + static_cast<int64_t>(ch) * r * d;
      float* oh = attn.data() + static_cast<int64_t>(ch) * r * d;
      kernels::Window window;
      window.size = lc.window;
      window.key_pos = cl.positions(ch).data();
      window.query_pos = pos;
      cl.with_rows(ch, [&](const auto* k, const auto* v, int64_t len) {
        kernels::attend_rows(qh, r, k, v, len, d, d, oh, window);
      });
    }
    output_projection(c, lw, 0, 1, attn.data(), a);
    mlp(c, lc, lw, 0, 1, a);
  }
  std::vector<float> logits(c.n_vocab);
  lm_head(a.hidden.data(), 1, logits.data());
  return logits;
}

std::vector<float> Model::decode_batch(const std::vector<int32_t>& tokens,
                                       const std::vector<int64_t>& positions,
                                       const std::vector<KVCache*>& caches) const {
  const ModelConfig& c = config_;
  const int B = static_cast<int>(tokens.size());
  if (B == 0) fail("decode_batch needs at least one sequence");
  // (one block of rows: the step's queries are all in Activations::qb)
  if (B > kBlockRows) fail("decode_batch takes at most ", kBlockRows, " sequences, got ", B);
  if (positions.size() != tokens.size() || caches.size() != tokens.size()) {
    fail("decode_batch: ", B, " tokens, ", positions.size(), " positions and ", caches.size(),
         " caches");
  }
  for (int b = 0; b < B; ++b) {
    if (!caches[b] || caches[b]->n_layer() != c.n_layer) {
      fail("decode_batch: sequence ", b, " needs a cache filled by prefill");
    }
    for (int o = 0; o < b; ++o) {
      if (caches[o] == caches[b]) fail("decode_batch: sequences ", o, " and ", b, " share a cache");
    }
  }
  // Every linear layer runs once on the B rows (weights streamed once per step, not B times);
  // attention runs per sequence against its own cache.
  Activations a;
  a.resize(B, c);
  std::vector<float> attn(static_cast<size_t>(B) * a.qd_max);  // [B, H*d] the attention output
  a.pos.resize(B);
  for (int b = 0; b < B; ++b) a.pos[b] = static_cast<int32_t>(positions[b]);
  embed(tokens.data(), B, a.hidden.data());
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerConfig& lc = c.layers[l];
    const LayerWeights& lw = w_.layers[l];
    const int d = lc.head_dim, g = lc.group_size();
    const int64_t qd = static_cast<int64_t>(lc.n_head) * d;
    const int64_t kvd = static_cast<int64_t>(lc.n_head_kv) * d;
    project_qkv(c, lc, lw, rope_[l], 0, B, a);
    // store cache: each sequence's new K/V row in every head of its own cache (caches of
    // different methods may have different head counts)
    std::vector<std::pair<int, int>> jobs;  // (sequence, cache head)
    int64_t rows = 0;
    for (int b = 0; b < B; ++b) {
      LayerCache& cl = caches[b]->layer(l);
      const int C = cl.n_heads(), r = lc.n_head / C;
      for (int ch = 0; ch < C; ++ch) {
        const int kvh = (ch * r) / g;
        cl.append(ch, a.k + b * kvd + static_cast<int64_t>(kvh) * d,
                  a.v + b * kvd + static_cast<int64_t>(kvh) * d, a.pos[b]);
        // a sliding-window layer: drop the rows no later query sees (as decode does)
        if (lc.local() && cl.len(ch) > lc.window + kWindowSlack) {
          cl.drop_before(ch, a.pos[b] - lc.window + 1);
        }
        jobs.emplace_back(b, ch);
      }
      rows += cl.rows();
    }
    // attention: sequence b's r query heads of cache head ch against its rows
    const int n_jobs = static_cast<int>(jobs.size());
#pragma omp parallel for if (kernels::worth_parallel(rows * d * 2))
    for (int j = 0; j < n_jobs; ++j) {
      const int b = jobs[j].first, ch = jobs[j].second;
      const LayerCache& cl = caches[b]->layer(l);
      const int r = lc.n_head / cl.n_heads();
      const float* qh = a.qb + b * qd + static_cast<int64_t>(ch) * r * d;
      float* oh = attn.data() + b * qd + static_cast<int64_t>(ch) * r * d;
      kernels::Window window;
      window.size = lc.window;
      window.key_pos = cl.positions(ch).data();
      window.query_pos = a.pos[b];
      cl.with_rows(ch, [&](const auto* k, const auto* v, int64_t len) {
        kernels::attend_rows(qh, r, k, v, len, d, d, oh, window);
      });
    }
    output_projection(c, lw, 0, B, attn.data(), a);
    mlp(c, lc, lw, 0, B, a);
  }
  std::vector<float> logits(static_cast<size_t>(B) * c.n_vocab);
  lm_head(a.hidden.data(), B, logits.data());
  return logits;
}

}  // namespace fastkv
