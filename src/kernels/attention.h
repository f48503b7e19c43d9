// Attention kernels of the f32 reference path. No n × n matrix is ever formed: keys are
// visited in tiles with an online (running max / running sum) softmax.
#pragma once

#include <cstdint>
#include <vector>
#include <string>

#include "common/page_buffer.h"

namespace fastkv::kernels {

// A sliding attention window (Gemma 3's local layers): key j is visible to query i only when
//   pos(i) - pos(j) < size
// on the tokens' original positions, so a window means the same after TSP dropped tokens.
// size 0 = no window: every earlier key is visible (Llama, Qwen2 pass the default).
struct Window {
  int size = 0;
  const int32_t* key_pos = nullptr;  // positions of the keys (causal_attention: of the n live
                                     // tokens, queries too, ascending); needed when size > 0
  int64_t query_pos = 0;             // attend_rows: position of the query

  bool active() const { return size > 0; }
  bool visible(int64_t qpos, int32_t kpos) const { return !active() || qpos - kpos < size; }
};

// first[i] for the n live tokens of a prefill: the first key token i sees under `window`
// (key_pos ascending, so the keys inside its window are the contiguous range first[i]..i).
// Empty without a window (every token sees keys from 0).
std::vector<int> window_first_keys(const Window& window, int n);

// One query group against `len` key/value rows.
//   q:   [g, d]    the g query heads that share this KV head (contiguous)
//   k,v: len rows of d floats, row r at k + r * stride (stride >= d)
//   out: [g, d]    softmax(q · kᵀ / sqrt(d)) · v for each of the g heads
//   window: rows outside it get no weight (key_pos: [len] the rows' positions); a query that
//           sees no row gets zeros
void attend_rows(const float* q, int g, const float* k, const float* v, int64_t len,
                 int64_t stride, int d, float* out, const Window& window = {});
// The same over bf16 K/V rows (the fast path's cache).
void attend_rows(const float* q, int g, const uint16_t* k, const uint16_t* v, int64_t len,
                 int64_t stride, int d, float* out, const Window& window = {});

// Causal self-attention over n live tokens sorted by position (token i sees tokens 0..i).
//   q:   [n, H, d]   post-RoPE queries
//   k,v: [n, G, d]   post-RoPE keys, values (H % G == 0; query head h uses KV head h / (H/G))
//   out: [n, H, d]
//   window: token i also sees only the keys inside it (key_pos: [n] the live tokens' positions)
void causal_attention(const float* q, const float* k, const float* v, int n, int H, int G, int d,
                      float* out, const Window& window = {});
// The same for the queries of tokens [first, first + count) only (a prefill's block of tokens):
//   q, out: [count, H, d]  those tokens' rows (out may be q: each row is read before it is written)
//   k, v:   [first + count, G, d] the keys and values of every token up to the block's last
//   window: key_pos as above, for the first + count tokens
// Each query's output is the one the whole call gives it, bit for bit when `first` is a
// multiple of 64 (the kernel's query tiles: OpenBLAS picks its kernels by a product's shape),
// within float rounding otherwise.
void causal_attention(const float* q, int first, int count, const float* k, const float* v, int H,
                      int G, int d, float* out, const Window& window = {});

// The same with bf16 tiles: Q·Kᵀ and P·V as oneDNN bf16 matmuls (AMX where present), softmax
// in f32 (src/kernels/attention_bf16.cpp). Inputs, output and window as for causal_attention;
// with a window, key tiles wholly before a query block's band are skipped (banded work).
void causal_attention_bf16(const float* q, const float* k, const float* v, int n, int H, int G,
                           int d, float* out, const Window& window = {});

// K and V of a prefill layer's live tokens in causal_attention_bf16's layout, added a block of
// tokens at a time as the prefill projects them:
//   k, v: [G, n_pad, d] bf16, n_pad = n rounded up to whole key tiles; rows not added yet and the
//         padding are zero (a key tile may reach past the last token added)
// Its pages come from the system at reset() and go back at release() (common/page_buffer.h): at
// 16K tokens of a 1B Llama they are 32 MiB. The prefill's bf16 path keeps them past the layer's
// attention: the cache takes its rows from here (the same bits as narrowing the f32 rows), one
// KV head at a time, each head's pages given back (discard_head) once its rows are stored.
class KeysValuesBf16 {
 public:
  void reset(int n, int G, int d);  // room for n tokens, none added
  // Adds the next `count` tokens: k, v [count, G, d] f32, rounded to bf16.
  void add(const float* k, const float* v, int count);
  // Row [d] of token i (< added()) in KV head h.
  const uint16_t* key_row(int h, int i) const { return k_.data() + (h * n_pad_ + i) * d_; }
  const uint16_t* value_row(int h, int i) const { return v_.data() + (h * n_pad_ + i) * d_; }
  // Gives head h's pages back: its rows read as zero afterwards, so no attention may run on it
  // again before the next reset().
  void discard_head(int h);
  void release();
  int added() const { return added_; }
  int capacity() const { return n_; }
  int heads() const { return G_; }
  int head_dim() const { return d_; }
  int64_t padded() const { return n_pad_; }
  const uint16_t* k() const { return k_.data(); }
  const uint16_t* v() const { return v_.data(); }

 private:
  int n_ = 0, G_ = 0, d_ = 0, added_ = 0;
  int64_t n_pad_ = 0;
  PageBuffer<uint16_t> k_, v_;
};

// The queries of tokens [first, first + count) against the keys added to kv so far
// (kv.added() >= first + count): q, out [count, H, d] (out may be q), window as for
// causal_attention over kv.capacity() tokens. Each query's output is the one the whole call
// above gives it, bit for bit.
void causal_attention_bf16(const float* q, int first, int count, const KeysValuesBf16& kv, int H,
                           float* out, const Window& window = {});
// oneDNN's implementation names of the two tile matmuls, e.g. "brg:avx512_core_amx_bf16 / ...".
std::string causal_attention_bf16_impl(int H, int G, int d);

// The attention probability each key receives, summed over all queries that see it:
//   colsum[h, j] = sum_{i >= j} softmax_j'(q[i, h] · k[j', h/g] / sqrt(d))[j]
// (H2O's heavy-hitter score). A second tiled pass over the keys, using each query's
// log-sum-exp, so no n × n matrix is formed. q: [n, H, d], k: [n, G, d], colsum: [H, n].
void causal_attention_column_sums(const float* q, const float* k, int n, int H, int G, int d,
                                  float* colsum);
// Adds the queries of tokens [first, first + count) to the column sums (q: [count, H, d] their
// rows; k: [first + count, G, d]; colsum: [H, stride] with stride >= first + count, columns of
// keys past first + count untouched). Blocks added in token order give the whole call's sums
// bit for bit.
void add_causal_attention_column_sums(const float* q, int first, int count, const float* k, int H,
                                      int G, int d, float* colsum, int64_t stride);

}  // namespace fastkv::kernels
