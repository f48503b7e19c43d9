#include "cache/kv_cache.h"

#include <algorithm>

#include "common/bf16.h"
#include "common/error.h"
#include "kernels/vec.h"

namespace fastkv {

void LayerCache::reset(int n_heads, int d) {
  head_dim = d;
  heads.assign(n_heads, HeadCache{});
}

void LayerCache::reserve(int head, int64_t rows) {
  HeadCache& h = heads.at(head);
  if (bf16) {
    h.kb.reserve(rows * head_dim);
    h.vb.reserve(rows * head_dim);
  } else {
    h.k.reserve(rows * head_dim);
    h.v.reserve(rows * head_dim);
  }
  h.pos.reserve(rows);
}

void LayerCache::append(int head, const float* k, const float* v, int32_t pos) {
  HeadCache& h = heads.at(head);
  if (bf16) {
    const size_t at = h.kb.size();
    h.kb.resize(at + head_dim);
    h.vb.resize(at + head_dim);
    kernels::to_bf16(k, 1.0f, h.kb.data() + at, head_dim);
    kernels::to_bf16(v, 1.0f, h.vb.data() + at, head_dim);
  } else {
    h.k.insert(h.k.end(), k, k + head_dim);
    h.v.insert(h.v.end(), v, v + head_dim);
  }
  h.pos.push_back(pos);
}

void LayerCache::append_bf16(int head, const uint16_t* k, const uint16_t* v, int32_t pos) {
  if (!bf16) fail("append_bf16 on a cache of f32 rows");
  HeadCache& h = heads.at(head);
  h.kb.insert(h.kb.end(), k, k + head_dim);
  h.vb.insert(h.vb.end(), v, v + head_dim);
  h.pos.push_back(pos);
}

int64_t LayerCache::drop_before(int head, int32_t min_pos) {
  HeadCache& h = heads.at(head);
  const int64_t len = h.len();
  int64_t out = 0;
  for (int64_t j = 0; j < len; ++j) {
    if (h.pos[j] < min_pos) continue;
    if (out != j) {
      h.pos[out] = h.pos[j];
      const int64_t from = j * head_dim, to = out * head_dim;
      if (bf16) {
        std::copy_n(h.kb.data() + from, head_dim, h.kb.data() + to);
        std::copy_n(h.vb.data() + from, head_dim, h.vb.data() + to);
      } else {
        std::copy_n(h.k.data() + from, head_dim, h.k.data() + to);
        std::copy_n(h.v.data() + from, head_dim, h.v.data() + to);
      }
    }
    ++out;
  }
  h.pos.resize(out);
  if (bf16) {
    h.kb.resize(out * head_dim);
    h.vb.resize(out * head_dim);
  } else {
    h.k.resize(out * head_dim);
    h.v.resize(out * head_dim);
  }
  return len - out;
}

void LayerCache::read_row(int head, int64_t j, float* k_out, float* v_out) const {
  if (head < 0 || head >= n_heads() || j < 0 || j >= len(head)) {
    fail("cache row ", j, " of head ", head, " does not exist (", n_heads(), " heads)");
  }
  const HeadCache& h = heads[head];
  const int64_t off = j * head_dim;
  if (bf16) {
    for (int i = 0; i < head_dim; ++i) {
      k_out[i] = bf16_to_f32(h.kb[off + i]);
      v_out[i] = bf16_to_f32(h.vb[off + i]);
    }
  } else {
    std::copy_n(h.k.data() + off, head_dim, k_out);
    std::copy_n(h.v.data() + off, head_dim, v_out);
  }
}

int64_t LayerCache::rows() const {
  int64_t r = 0;
  for (const HeadCache& h : heads) r += h.len();
  return r;
}

int64_t LayerCache::kv_bytes() const {
  int64_t b = 0;
  for (const HeadCache& h : heads) {
    b += static_cast<int64_t>((h.k.size() + h.v.size()) * sizeof(float) +
                              (h.kb.size() + h.vb.size()) * sizeof(uint16_t));
  }
  return b;
}

int64_t LayerCache::bytes() const {
  return kv_bytes() + rows() * static_cast<int64_t>(sizeof(int32_t));  // + positions
}

namespace {
// Sums a per-layer count over the layers.
template <class F>
int64_t sum_layers(const std::vector<LayerCache>& layers, F count) {
  int64_t b = 0;
  for (const LayerCache& l : layers) b += count(l);
  return b;
}
}  // namespace

int64_t KVCache::kv_bytes() const {
  return sum_layers(layers_, [](const LayerCache& l) { return l.kv_bytes(); });
}

void KVCache::set_decode_headroom(int64_t rows) {
  if (rows < 0) fail("decode headroom must be >= 0 rows, got ", rows);
  headroom_ = rows;
}

int64_t KVCache::bytes() const {
  return sum_layers(layers_, [](const LayerCache& l) { return l.bytes(); });
}

}  // namespace fastkv
