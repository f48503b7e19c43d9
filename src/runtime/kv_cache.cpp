#include "runtime/kv_cache.h"

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

int64_t LayerCache::rows() const {
  int64_t r = 0;
  for (const HeadCache& h : heads) r += h.len();
  return r;
}

int64_t LayerCache::bytes() const {
  int64_t b = 0;
  for (const HeadCache& h : heads) {
    b += static_cast<int64_t>((h.k.size() + h.v.size()) * sizeof(float) +
                              (h.kb.size() + h.vb.size()) * sizeof(uint16_t) +
                              h.pos.size() * sizeof(int32_t));
  }
  return b;
}

int64_t LayerCache::kv_bytes() const {
  int64_t b = 0;
  for (const HeadCache& h : heads) {
    b += static_cast<int64_t>((h.k.size() + h.v.size()) * sizeof(float) +
                              (h.kb.size() + h.vb.size()) * sizeof(uint16_t));
  }
  return b;
}

int64_t KVCache::kv_bytes() const {
  int64_t b = 0;
  for (const LayerCache& l : layers_) b += l.kv_bytes();
  return b;
}

int64_t KVCache::bytes() const {
  int64_t b = 0;
  for (const LayerCache& l : layers_) b += l.bytes();
  return b;
}

}  // namespace fastkv
