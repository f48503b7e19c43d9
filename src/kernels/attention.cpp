#include "kernels/attention.h"
#include "kernels/cancel.h"
#include "kernels/parallel.h"
#include "kernels/vec.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#ifdef FASTKV_AVX512_KERNELS
#include <immintrin.h>
#endif

namespace fastkv::kernels {
namespace {
constexpr int kTile = 128;    // keys per tile
constexpr int kMaxGroup = 64; // query heads per KV head handled at once
}  // namespace

namespace {
// Windowed = false compiles the plain loop (decode's hot path); true masks the rows outside the
// window to -inf before the softmax, and skips a tile where no row is visible.
template <bool Windowed, typename Row>
void attend_rows_impl(const float* q, int g, const Row* k, const Row* v, int64_t len,
                      int64_t stride, int d, float* out, const Window& window) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  float m[kMaxGroup], l[kMaxGroup];
  float s[kTile];
  for (int h = 0; h < g; ++h) {
    m[h] = -std::numeric_limits<float>::infinity();
    l[h] = 0;
    std::fill(out + static_cast<int64_t>(h) * d, out + static_cast<int64_t>(h + 1) * d, 0.0f);
  }
  for (int64_t t0 = 0; t0 < len; t0 += kTile) {
    const int tn = static_cast<int>(std::min<int64_t>(kTile, len - t0));
    for (int h = 0; h < g; ++h) {
      const float* qh = q + static_cast<int64_t>(h) * d;
      float* oh = out + static_cast<int64_t>(h) * d;
      dot_rows(qh, k + t0 * stride, stride, tn, d, scale, s);
      if constexpr (Windowed) {
        for (int t = 0; t < tn; ++t) {
          if (!window.visible(window.query_pos, window.key_pos[t0 + t])) {
            s[t] = -std::numeric_limits<float>::infinity();
          }
        }
        if (max_of(s, tn) == -std::numeric_limits<float>::infinity()) continue;
      }
      const float new_m = std::max(m[h], max_of(s, tn));
      const float correction = exp_nonpositive(m[h] - new_m);  // 0 on the first tile
      l[h] = l[h] * correction + exp_shift_sum(s, tn, new_m);
      scale_in_place(oh, correction, d);
      for (int t = 0; t < tn; ++t) axpy(s[t], v + (t0 + t) * stride, oh, d);
      m[h] = new_m;
    }
  }
  for (int h = 0; h < g; ++h) {
    scale_in_place(out + static_cast<int64_t>(h) * d, l[h] > 0 ? 1.0f / l[h] : 0.0f, d);
  }
}
}  // namespace

void attend_rows(const float* q, int g, const float* k, const float* v, int64_t len,
                 int64_t stride, int d, float* out, const Window& window) {
  if (window.active()) return attend_rows_impl<true>(q, g, k, v, len, stride, d, out, window);
  attend_rows_impl<false>(q, g, k, v, len, stride, d, out, window);
}

#ifdef FASTKV_AVX512_KERNELS
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 header false positive
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace {

constexpr int kDecodeGroup = 8;  // g handled by the AVX-512 decode kernel
constexpr int kDecodeTile = 64;  // rows per online-softmax step

__attribute__((target("avx512f"), always_inline)) inline __m512 load_bf16x16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Decode attention over bf16 rows with AVX-512, NV = d / 16 vectors per row: each K and V row
// is loaded and widened once for all g query heads (the generic path re-reads it per head), the
// g × d accumulators stay in registers (d 64, 128; at d 256 part of them lives in L1).
// Windowed: rows outside the window get no weight and are not read; a tile with no visible
// row is skipped whole (a sliding-window layer's cache holds up to kWindowSlack rows that
// left the window, and after TSP its rows are spread over the window).
//   s:   [g, kDecodeTile] scores, then probabilities, of the current tile
//   vis: [kDecodeTile] whether each row of the tile is inside the window
template <int NV, bool Windowed>
__attribute__((target("avx512f"))) void attend_rows_bf16_avx512(const float* q, int g,
                                                                 const uint16_t* k,
                                                                 const uint16_t* v, int64_t len,
                                                                 int64_t stride, float* out,
                                                                 const Window& window) {
  constexpr int d = NV * 16;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  __m512 qv[kDecodeGroup][NV], acc[kDecodeGroup][NV];
  float m[kDecodeGroup], l[kDecodeGroup];
  alignas(64) float s[kDecodeGroup][kDecodeTile];
  bool vis[kDecodeTile];
  for (int h = 0; h < g; ++h) {
    for (int j = 0; j < NV; ++j) {
      qv[h][j] = _mm512_mul_ps(_mm512_loadu_ps(q + h * d + 16 * j), _mm512_set1_ps(scale));
      acc[h][j] = _mm512_setzero_ps();
    }
    m[h] = -std::numeric_limits<float>::infinity();
    l[h] = 0;
  }
  for (int64_t t0 = 0; t0 < len; t0 += kDecodeTile) {
    const int tn = static_cast<int>(std::min<int64_t>(kDecodeTile, len - t0));
    if constexpr (Windowed) {
      bool any = false;
      for (int t = 0; t < tn; ++t) {
        vis[t] = window.visible(window.query_pos, window.key_pos[t0 + t]);
        any |= vis[t];
      }
      if (!any) continue;
    }
    for (int t = 0; t < tn; ++t) {
      if constexpr (Windowed) {
        if (!vis[t]) {
          for (int h = 0; h < g; ++h) s[h][t] = -std::numeric_limits<float>::infinity();
          continue;
        }
      }
      const uint16_t* kr = k + (t0 + t) * stride;
      __m512 kf[NV];
      for (int j = 0; j < NV; ++j) kf[j] = load_bf16x16(kr + 16 * j);
      for (int h = 0; h < g; ++h) {
        __m512 dot = _mm512_mul_ps(qv[h][0], kf[0]);
        for (int j = 1; j < NV; ++j) dot = _mm512_fmadd_ps(qv[h][j], kf[j], dot);
        s[h][t] = _mm512_reduce_add_ps(dot);
      }
    }
    for (int h = 0; h < g; ++h) {
      const float new_m = std::max(m[h], max_of(s[h], tn));
      const float corr = exp_nonpositive(m[h] - new_m);  // 0 on the first tile
      l[h] = l[h] * corr + exp_shift_sum(s[h], tn, new_m);
      m[h] = new_m;
      const __m512 c = _mm512_set1_ps(corr);
      for (int j = 0; j < NV; ++j) acc[h][j] = _mm512_mul_ps(acc[h][j], c);
    }
    for (int t = 0; t < tn; ++t) {
      if constexpr (Windowed) {
        if (!vis[t]) continue;  // probability 0
      }
      const uint16_t* vr = v + (t0 + t) * stride;
      __m512 vf[NV];
      for (int j = 0; j < NV; ++j) vf[j] = load_bf16x16(vr + 16 * j);
      for (int h = 0; h < g; ++h) {
        const __m512 p = _mm512_set1_ps(s[h][t]);
        for (int j = 0; j < NV; ++j) acc[h][j] = _mm512_fmadd_ps(p, vf[j], acc[h][j]);
      }
    }
  }
  for (int h = 0; h < g; ++h) {
    const __m512 inv = _mm512_set1_ps(l[h] > 0 ? 1.0f / l[h] : 0.0f);
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(out + h * d + 16 * j, _mm512_mul_ps(acc[h][j], inv));
  }
}

}  // namespace
#pragma GCC diagnostic pop
#endif

void attend_rows(const float* q, int g, const uint16_t* k, const uint16_t* v, int64_t len,
                 int64_t stride, int d, float* out, const Window& window) {
#ifdef FASTKV_AVX512_KERNELS
  if (cpu_has_avx512f() && g <= kDecodeGroup && len > 0) {
    const bool w = window.active();
    switch (d) {
      case 64:
        return w ? attend_rows_bf16_avx512<4, true>(q, g, k, v, len, stride, out, window)
                 : attend_rows_bf16_avx512<4, false>(q, g, k, v, len, stride, out, window);
      case 128:
        return w ? attend_rows_bf16_avx512<8, true>(q, g, k, v, len, stride, out, window)
                 : attend_rows_bf16_avx512<8, false>(q, g, k, v, len, stride, out, window);
      case 256:  // Gemma 3
        return w ? attend_rows_bf16_avx512<16, true>(q, g, k, v, len, stride, out, window)
                 : attend_rows_bf16_avx512<16, false>(q, g, k, v, len, stride, out, window);
      default: break;
    }
  }
#endif
  if (window.active()) return attend_rows_impl<true>(q, g, k, v, len, stride, d, out, window);
  attend_rows_impl<false>(q, g, k, v, len, stride, d, out, window);
}

std::vector<int> window_first_keys(const Window& window, int n) {
  std::vector<int> first;
  if (!window.active()) return first;
  first.resize(n);
  for (int i = 0; i < n; ++i) {
    const int64_t lowest = static_cast<int64_t>(window.key_pos[i]) - window.size + 1;
    first[i] = static_cast<int>(
        std::lower_bound(window.key_pos, window.key_pos + i, lowest,
                         [](int32_t p, int64_t x) { return p < x; }) - window.key_pos);
  }
  return first;
}

void causal_attention(const float* q, const float* k, const float* v, int n, int H, int G, int d,
                      float* out, const Window& window) {
  causal_attention(q, 0, n, k, v, H, G, d, out, window);
}

void causal_attention(const float* q, int first_query, int count, const float* k, const float* v,
                      int H, int G, int d, float* out, const Window& window) {
  // Blocks of kQBlock queries of one head against tiles of kKBlock keys: S = Q·Kᵀ and O += P·V
  // are small GEMMs (OpenBLAS, single-threaded inside the parallel loop); the softmax runs
  // online across key tiles, so only a kQBlock × kKBlock score tile exists at a time. The key
  // tiles are aligned to kKBlock, so a query tile that starts where the whole call's does (a
  // multiple of kQBlock) makes the same products and gives the same output.
  constexpr int kQBlock = 64, kKBlock = 256;
  const int g = H / G;
  const int64_t q_stride = static_cast<int64_t>(H) * d;
  const int64_t kv_stride = static_cast<int64_t>(G) * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int n = first_query + count;  // tokens whose keys the block's queries may see
  const int n_qblocks = (count + kQBlock - 1) / kQBlock;
  // first[i]: the first key token i sees (empty without a window)
  const std::vector<int> first = window_first_keys(window, n);
  // A cancelled prefill (kernels/cancel.h) stops handing out blocks; the caller throws.
  CancelPoll cancel(cancel_check());
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (worth_parallel(static_cast<int64_t>(count) * n * H * d))
  for (int h = 0; h < H; ++h) {
    for (int qb = 0; qb < n_qblocks; ++qb) {
      if (cancel.stop()) continue;
      const int r0 = qb * kQBlock, qn = std::min(kQBlock, count - r0);  // rows of q and out
      const int i0 = first_query + r0;                                  // their first token
      const float* qh = q + r0 * q_stride + static_cast<int64_t>(h) * d;
      const float* kh = k + static_cast<int64_t>(h / g) * d;
      const float* vh = v + static_cast<int64_t>(h / g) * d;
      float* oh = out + r0 * q_stride + static_cast<int64_t>(h) * d;
      std::vector<float> s(static_cast<size_t>(kQBlock) * kKBlock);
      std::vector<float> acc(static_cast<size_t>(kQBlock) * d, 0.0f);
      std::vector<float> m(kQBlock, -std::numeric_limits<float>::infinity()), l(kQBlock, 0.0f);
      const int keys = i0 + qn;  // keys visible to the last query of the block
      // the tile (aligned to kKBlock) holding the first key the block sees: nothing before it
      // is visible, and aligned tiles are the same for a query wherever its block starts
      const int j_begin = first.empty() ? 0 : first[i0] / kKBlock * kKBlock;
      for (int j0 = j_begin; j0 < keys; j0 += kKBlock) {
        const int kn = std::min(kKBlock, keys - j0);
        // S[qn, kn] = Q · Kᵀ × scale
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qn, kn, d, scale, qh, q_stride,
                    kh + j0 * kv_stride, kv_stride, 0.0f, s.data(), kKBlock);
        for (int r = 0; r < qn; ++r) {
          float* sr = s.data() + static_cast<int64_t>(r) * kKBlock;
          // Keys [lo, visible) of the tile are visible: causal (key j <= query i), and not
          // before the window's first key.
          const int visible = std::max(0, std::min(kn, i0 + r + 1 - j0));
          const int lo = first.empty() ? 0 : std::clamp(first[i0 + r] - j0, 0, visible);
          if (visible == lo) {  // nothing visible in this tile for this query
            std::fill(sr, sr + kn, 0.0f);
            continue;
          }
          const float new_m = std::max(m[r], max_of(sr + lo, visible - lo));
          const float corr = exp_nonpositive(m[r] - new_m);
          const float sum = exp_shift_sum(sr + lo, visible - lo, new_m);
          std::fill(sr, sr + lo, 0.0f);
          std::fill(sr + visible, sr + kn, 0.0f);
          l[r] = l[r] * corr + sum;
          m[r] = new_m;
          scale_in_place(acc.data() + static_cast<int64_t>(r) * d, corr, d);
        }
        // acc[qn, d] += P[qn, kn] · V[kn, d]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qn, d, kn, 1.0f, s.data(), kKBlock,
                    vh + j0 * kv_stride, kv_stride, 1.0f, acc.data(), d);
      }
      for (int r = 0; r < qn; ++r) {
        const float inv = 1.0f / l[r];
        for (int j = 0; j < d; ++j) oh[r * q_stride + j] = acc[static_cast<int64_t>(r) * d + j] * inv;
      }
    }
  }
}

void causal_attention_column_sums(const float* q, const float* k, int n, int H, int G, int d,
                                  float* colsum) {
  std::fill(colsum, colsum + static_cast<int64_t>(H) * n, 0.0f);
  add_causal_attention_column_sums(q, 0, n, k, H, G, d, colsum, n);
}

void add_causal_attention_column_sums(const float* q, int first, int count, const float* k, int H,
                                      int G, int d, float* colsum, int64_t stride) {
  const int g = H / G;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t n = first + count;
  // Heads are independent: each thread owns whole rows of colsum.
#pragma omp parallel for schedule(dynamic, 1) if (worth_parallel(static_cast<int64_t>(count) * n * H * d))
  for (int h = 0; h < H; ++h) {
    const int kvh = h / g;
    float* cs = colsum + static_cast<int64_t>(h) * stride;
    std::vector<float> s(kTile);
    for (int i = first; i < first + count; ++i) {
      const float* qi = q + (static_cast<int64_t>(i - first) * H + h) * d;
      // Pass 1: log-sum-exp of this query's scores over keys 0..i (online, in tiles).
      float m = -std::numeric_limits<float>::infinity(), l = 0;
      for (int t0 = 0; t0 <= i; t0 += kTile) {
        const int tn = std::min(kTile, i + 1 - t0);
        dot_rows(qi, k + (static_cast<int64_t>(t0) * G + kvh) * d, static_cast<int64_t>(G) * d, tn,
                 d, scale, s.data());
        const float new_m = std::max(m, max_of(s.data(), tn));
        l = l * exp_nonpositive(m - new_m) + exp_shift_sum(s.data(), tn, new_m);
        m = new_m;
      }
      // Pass 2: add each key's probability.
      const float inv_l = 1.0f / l;
      for (int t0 = 0; t0 <= i; t0 += kTile) {
        const int tn = std::min(kTile, i + 1 - t0);
        dot_rows(qi, k + (static_cast<int64_t>(t0) * G + kvh) * d, static_cast<int64_t>(G) * d, tn,
                 d, scale, s.data());
        exp_shift_sum(s.data(), tn, m);
        axpy(inv_l, s.data(), cs + t0, tn);
      }
    }
  }
}

}  // namespace fastkv::kernels
