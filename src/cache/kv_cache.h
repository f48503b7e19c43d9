// The KV cache: per layer, per cache head, the K and V rows that a compression policy kept,
// each with the true (original) position of its token.
//
// Cache heads are the model's KV heads (G) unless a per-query-head policy (snapkv) asks for H;
// query head h reads cache head h / (H / cache_heads). Rows carry RoPE already, so their order
// does not matter and they never need re-rotation. Lengths differ per layer and per head.
// Rows are f32 (the reference path) or bf16 (the fast path: half the bytes a decode step
// streams); a cache holds one kind, chosen when it is reset.
//
// The model reads and writes rows only through LayerCache's per-head accessors (append,
// with_rows, positions, len), so the row storage (f32, bf16, later quantised or paged) is this
// folder's business alone. The accessors are inline: decode's inner loop is unchanged.
#pragma once

#include <cstdint>
#include <vector>

namespace fastkv {

enum class RowType {
  kF32,   // rows as f32: the reference path
  kBf16,  // rows as bf16 bits: the fast path (rounded to nearest even on append)
};

// Storage of one cache head. Read it through LayerCache's accessors; the fields stay visible
// for tests that compare stored rows bit for bit.
struct HeadCache {
  std::vector<float> k;       // [len, d] f32 rows (f32 caches)
  std::vector<float> v;       // [len, d]
  std::vector<uint16_t> kb;   // [len, d] bf16 rows (bf16 caches)
  std::vector<uint16_t> vb;   // [len, d]
  std::vector<int32_t> pos;   // [len] original token positions
  int64_t len() const { return static_cast<int64_t>(pos.size()); }
};

struct LayerCache {
  int head_dim = 0;              // d
  bool bf16 = false;             // rows stored as bf16 (kb, vb) instead of f32 (k, v)
  std::vector<HeadCache> heads;  // [cache_heads]

  int n_heads() const { return static_cast<int>(heads.size()); }
  RowType row_type() const { return bf16 ? RowType::kBf16 : RowType::kF32; }
  void reset(int n_heads, int d);  // keeps the row type
  void reserve(int head, int64_t rows);
  // Appends one row: k, v [d] f32 (narrowed to bf16 in a bf16 cache), at position pos.
  void append(int head, const float* k, const float* v, int32_t pos);
  // Appends one row already narrowed: k, v [d] bf16 bits (a bf16 cache only; fails on f32).
  void append_bf16(int head, const uint16_t* k, const uint16_t* v, int32_t pos);
  // Removes the head's rows whose position is below min_pos, keeping the others in order (a
  // sliding-window layer drops what no later query can see). Returns how many were removed.
  int64_t drop_before(int head, int32_t min_pos);

  // Rows of one head.
  int64_t len(int head) const { return heads[head].len(); }
  const std::vector<int32_t>& positions(int head) const { return heads[head].pos; }  // [len]
  // Calls f(k, v, len) with the head's rows in their stored type: k, v point at [len, d]
  // rows (row r at k + r * d), both `const float*` or both `const uint16_t*` (bf16 bits).
  // Kernels with an overload per row type (attend_rows, dot_rows) take them as they are.
  template <class F>
  decltype(auto) with_rows(int head, F&& f) const {
    const HeadCache& h = heads[head];
    if (bf16) return f(h.kb.data(), h.vb.data(), h.len());
    return f(h.k.data(), h.v.data(), h.len());
  }
  // Row j of a head widened to f32 (k_out, v_out: [d]); for inspection and tests.
  void read_row(int head, int64_t j, float* k_out, float* v_out) const;

  int64_t rows() const;    // sum of lengths over heads
  int64_t bytes() const;   // K + V + positions actually held
  int64_t kv_bytes() const;  // K + V only: what one decode step reads
};

class KVCache {
 public:
  // n_layer empty layers whose rows are bf16 when `bf16`, else f32 (the decode headroom stays).
  void reset(int n_layer, bool bf16 = false) {
    LayerCache empty;
    empty.bf16 = bf16;
    layers_.assign(n_layer, empty);
  }
  // Rows each head reserves past those a prefill stores (Model::prefill), so that this many
  // decode steps append without moving a head's rows. Growing a full head copies it, and the
  // fastkv executable keeps freed memory in the process (tools/fastkv/main.cpp), so the old
  // copy stays resident: without headroom the first decode step after an 8K-token prefill of
  // a 1B Llama raised RSS by 128 MiB, half its cache (docs/benchmarks.md, "Session 13").
  // Reserved rows that are never written cost address space, not memory. Default 0.
  void set_decode_headroom(int64_t rows);
  int64_t decode_headroom() const { return headroom_; }
  void reset(int n_layer, RowType type) { reset(n_layer, type == RowType::kBf16); }
  LayerCache& layer(int i) { return layers_.at(i); }
  const LayerCache& layer(int i) const { return layers_.at(i); }
  int n_layer() const { return static_cast<int>(layers_.size()); }
  int64_t bytes() const;
  int64_t kv_bytes() const;
  void clear() { layers_.clear(); }

 private:
  std::vector<LayerCache> layers_;
  int64_t headroom_ = 0;
};

}  // namespace fastkv
