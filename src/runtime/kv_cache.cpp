#include "runtime/kv_cache.h"

namespace fastkv {

void LayerCache::reset(int n_heads, int d) {
  head_dim = d;
  heads.assign(n_heads, HeadCache{});
}

void LayerCache::append(int head, const float* k, const float* v, int32_t pos) {
  HeadCache& h = heads.at(head);
  h.k.insert(h.k.end(), k, k + head_dim);
  h.v.insert(h.v.end(), v, v + head_dim);
  h.pos.push_back(pos);
}

int64_t LayerCache::rows() const {
  int64_t r = 0;
  for (const HeadCache& h : heads) r += h.len();
  return r;
}

int64_t LayerCache::bytes() const {
  int64_t b = 0;
  for (const HeadCache& h : heads) {
    b += static_cast<int64_t>((h.k.size() + h.v.size()) * sizeof(float) +
                              h.pos.size() * sizeof(int32_t));
  }
  return b;
}

int64_t KVCache::bytes() const {
  int64_t b = 0;
  for (const LayerCache& l : layers_) b += l.bytes();
  return b;
}

}  // namespace fastkv
