// The KV cache: per layer, per cache head, the K and V rows that a compression policy kept,
// each with the true (original) position of its token.
//
// Cache heads are the model's KV heads (G) unless a per-query-head policy (snapkv) asks for H;
// query head h reads cache head h / (H / cache_heads). Rows carry RoPE already, so their order
// does not matter and they never need re-rotation. Lengths differ per layer and per head.
#pragma once

#include <cstdint>
#include <vector>

namespace fastkv {

struct HeadCache {
  std::vector<float> k;       // [len, d]
  std::vector<float> v;       // [len, d]
  std::vector<int32_t> pos;   // [len] original token positions
  int64_t len() const { return static_cast<int64_t>(pos.size()); }
};

struct LayerCache {
  int head_dim = 0;
  std::vector<HeadCache> heads;  // [cache_heads]

  int n_heads() const { return static_cast<int>(heads.size()); }
  void reset(int n_heads, int d);
  void append(int head, const float* k, const float* v, int32_t pos);
  int64_t rows() const;    // sum of lengths over heads
  int64_t bytes() const;   // K + V + positions actually held
};

class KVCache {
 public:
  void reset(int n_layer) { layers_.assign(n_layer, LayerCache{}); }
  LayerCache& layer(int i) { return layers_.at(i); }
  const LayerCache& layer(int i) const { return layers_.at(i); }
  int n_layer() const { return static_cast<int>(layers_.size()); }
  int64_t bytes() const;
  void clear() { layers_.clear(); }

 private:
  std::vector<LayerCache> layers_;
};

}  // namespace fastkv
