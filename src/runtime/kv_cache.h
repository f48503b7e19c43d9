// The KV cache: per layer, per cache head, the K and V rows that a compression policy kept,
// each with the true (original) position of its token.
//
// Cache heads are the model's KV heads (G) unless a per-query-head policy (snapkv) asks for H;
// query head h reads cache head h / (H / cache_heads). Rows carry RoPE already, so their order
// does not matter and they never need re-rotation. Lengths differ per layer and per head.
// Rows are f32 (the reference path) or bf16 (the fast path: half the bytes a decode step
// streams); a cache holds one kind, chosen when it is reset.
#pragma once

#include <cstdint>
#include <vector>

namespace fastkv {

struct HeadCache {
  std::vector<float> k;       // [len, d] f32 rows (f32 caches)
  std::vector<float> v;       // [len, d]
  std::vector<uint16_t> kb;   // [len, d] bf16 rows (bf16 caches)
  std::vector<uint16_t> vb;   // [len, d]
  std::vector<int32_t> pos;   // [len] original token positions
  int64_t len() const { return static_cast<int64_t>(pos.size()); }
};

struct LayerCache {
  int head_dim = 0;
  bool bf16 = false;             // rows stored as bf16 (kb, vb) instead of f32 (k, v)
  std::vector<HeadCache> heads;  // [cache_heads]

  int n_heads() const { return static_cast<int>(heads.size()); }
  void reset(int n_heads, int d);  // keeps the row type
  void reserve(int head, int64_t rows);
  void append(int head, const float* k, const float* v, int32_t pos);
  int64_t rows() const;    // sum of lengths over heads
  int64_t bytes() const;   // K + V + positions actually held
  int64_t kv_bytes() const;  // K + V only: what one decode step reads
};

class KVCache {
 public:
  // n_layer empty layers whose rows are bf16 when `bf16`, else f32.
  void reset(int n_layer, bool bf16 = false) {
    LayerCache empty;
    empty.bf16 = bf16;
    layers_.assign(n_layer, empty);
  }
  LayerCache& layer(int i) { return layers_.at(i); }
  const LayerCache& layer(int i) const { return layers_.at(i); }
  int n_layer() const { return static_cast<int>(layers_.size()); }
  int64_t bytes() const;
  int64_t kv_bytes() const;
  void clear() { layers_.clear(); }

 private:
  std::vector<LayerCache> layers_;
};

}  // namespace fastkv
