#include "model/model.h"
#include "kernels/parallel.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include "common/error.h"
#include "kernels/attention.h"

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

// Activations of one layer for n live tokens (all row-major, token-major). The MLP runs over
// blocks of at most kMlpRows tokens, so its buffers (the widest: F per token) stay small.
constexpr int kMlpRows = 2048;

struct Activations {
  std::vector<float> hidden;  // [n, D] residual stream
  std::vector<float> xnorm;   // [n, D] normed input of the current sub-block
  std::vector<float> q;       // [n, H*d]
  std::vector<float> k;       // [n, G*d]
  std::vector<float> v;       // [n, G*d]
  std::vector<float> attn;    // [n, H*d] attention output before o_proj
  std::vector<float> proj;    // [min(n, kMlpRows), D] output of o_proj / ffn_down
  std::vector<float> gate;    // [min(n, kMlpRows), F]
  std::vector<float> up;      // [min(n, kMlpRows), F]
  std::vector<int32_t> pos;   // [n] original positions

  void resize(int n, const ModelConfig& c) {
    const int64_t qd = static_cast<int64_t>(c.n_head) * c.head_dim;
    const int64_t kvd = static_cast<int64_t>(c.n_head_kv) * c.head_dim;
    const int64_t block = std::min(n, kMlpRows);
    hidden.resize(static_cast<size_t>(n) * c.d_model);
    xnorm.resize(static_cast<size_t>(n) * c.d_model);
    q.resize(n * qd);
    k.resize(n * kvd);
    v.resize(n * kvd);
    attn.resize(n * qd);
    proj.resize(block * c.d_model);
    gate.resize(block * c.d_ff);
    up.resize(block * c.d_ff);
  }
};

// norm -> Q/K/V projections (+bias) -> RoPE at the tokens' original positions.
void project_qkv(const ModelConfig& c, const LayerWeights& lw, const kernels::RopeTable& rope,
                 int n, Activations& a) {
  const int qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  kernels::rmsnorm(a.hidden.data(), lw.attn_norm.data(), n, c.d_model, c.rms_eps, a.xnorm.data());
  lw.wq.forward(a.xnorm.data(), n, a.q.data());
  lw.wk.forward(a.xnorm.data(), n, a.k.data());
  lw.wv.forward(a.xnorm.data(), n, a.v.data());
#pragma omp parallel for if (kernels::worth_parallel(static_cast<int64_t>(n) * (qd + kvd) * 4))
  for (int i = 0; i < n; ++i) {
    rope.apply(a.q.data() + static_cast<int64_t>(i) * qd, c.n_head,
               a.k.data() + static_cast<int64_t>(i) * kvd, c.n_head_kv, c.head_dim, a.pos[i]);
  }
}

// hidden += o_proj(attn); hidden += down(silu(gate(norm(hidden))) * up(norm(hidden))),
// in blocks of kMlpRows tokens (each token's MLP is independent of the others).
void output_and_mlp(const ModelConfig& c, const LayerWeights& lw, int n, Activations& a) {
  const int D = c.d_model;
  const int64_t qd = static_cast<int64_t>(c.n_head) * c.head_dim;
  for (int i0 = 0; i0 < n; i0 += kMlpRows) {
    const int m = std::min(kMlpRows, n - i0);
    const int64_t md = static_cast<int64_t>(m) * D;
    float* hidden = a.hidden.data() + static_cast<int64_t>(i0) * D;
    lw.wo.forward(a.attn.data() + i0 * qd, m, a.proj.data());
    kernels::add_inplace(hidden, a.proj.data(), md);
    kernels::rmsnorm(hidden, lw.ffn_norm.data(), m, D, c.rms_eps, a.xnorm.data());
    lw.w_gate.forward(a.xnorm.data(), m, a.gate.data());
    lw.w_up.forward(a.xnorm.data(), m, a.up.data());
    kernels::swiglu(a.gate.data(), a.up.data(), static_cast<int64_t>(m) * c.d_ff, a.gate.data());
    lw.w_down.forward(a.gate.data(), m, a.proj.data());
    kernels::add_inplace(hidden, a.proj.data(), md);
  }
}

// Writes the rows a policy kept into the layer's cache. Cache head ch serves query heads
// [ch*r, (ch+1)*r) with r = H / cache_heads, and holds rows of KV head (ch*r) / g.
void store_cache(const ModelConfig& c, const LayerDecision& dec, const Activations& a, int n,
                 LayerCache& lc) {
  const int C = dec.cache_heads;
  const int d = c.head_dim, G = c.n_head_kv, g = c.group_size();
  // Each cache head must serve query heads of a single KV head: H % C == 0 and g % (H/C) == 0.
  if (C <= 0 || c.n_head % C != 0 || g % (c.n_head / C) != 0) {
    fail("policy returned ", C, " cache heads for a model with ", c.n_head, " query and ", G,
         " KV heads");
  }
  if (!dec.keep_all && static_cast<int>(dec.keep.size()) != C) {
    fail("policy returned keep lists for ", dec.keep.size(), " heads, expected ", C);
  }
  const int r = c.n_head / C;
  lc.reset(C, d);
  for (int ch = 0; ch < C; ++ch) {
    const int kvh = (ch * r) / g;
    const int64_t rows = dec.keep_all ? n : static_cast<int64_t>(dec.keep[ch].size());
    lc.reserve(ch, rows);
    for (int64_t j = 0; j < rows; ++j) {
      const int32_t idx = dec.keep_all ? static_cast<int32_t>(j) : dec.keep[ch][j];
      if (idx < 0 || idx >= n) fail("policy kept row ", idx, " of ", n, " live tokens");
      const int64_t off = (static_cast<int64_t>(idx) * G + kvh) * d;
      lc.append(ch, a.k.data() + off, a.v.data() + off, a.pos[idx]);
    }
  }
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

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& opts) {
  std::unique_ptr<Model> m(new Model(gguf::File::open(path)));
  const gguf::File& f = m->file_;
  ModelConfig& c = m->config_;
  c = ModelConfig::from_gguf(f);
  m->backend_ = opts.backend;
  const int D = c.d_model, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  auto linear = [&](const std::string& name, int in, int out, const std::string& bias_name) {
    std::vector<float> bias = bias_name.empty() ? std::vector<float>{} : load_vector(f, bias_name, out);
    return kernels::Linear(load_matrix(f, name, in, out), in, out, std::move(bias), opts.backend);
  };
  Weights& w = m->w_;
  w.token_embd = load_matrix(f, "token_embd.weight", D, c.n_vocab);
  w.output_norm = load_vector(f, "output_norm.weight", D);
  w.lm_head = c.tied_embeddings
                  ? kernels::Linear(w.token_embd, D, c.n_vocab, {}, opts.backend)
                  : linear("output.weight", D, c.n_vocab, "");
  w.layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = cat("blk.", l, ".");
    LayerWeights& lw = w.layers[l];
    lw.attn_norm = load_vector(f, p + "attn_norm.weight", D);
    lw.wq = linear(p + "attn_q.weight", D, qd, c.qkv_bias ? p + "attn_q.bias" : "");
    lw.wk = linear(p + "attn_k.weight", D, kvd, c.qkv_bias ? p + "attn_k.bias" : "");
    lw.wv = linear(p + "attn_v.weight", D, kvd, c.qkv_bias ? p + "attn_v.bias" : "");
    lw.wo = linear(p + "attn_output.weight", qd, D, "");
    lw.ffn_norm = load_vector(f, p + "ffn_norm.weight", D);
    lw.w_gate = linear(p + "ffn_gate.weight", D, c.d_ff, "");
    lw.w_up = linear(p + "ffn_up.weight", D, c.d_ff, "");
    lw.w_down = linear(p + "ffn_down.weight", c.d_ff, D, "");
  }
  m->rope_.rope_dim = c.rope_dim;
  m->rope_.theta = c.rope_theta;
  m->rope_.freq_scale = c.rope_freq_scale;
  m->rope_.factors = c.rope_freq_factors;
  m->rope_.neox = c.rope_style == RopeStyle::kNeox;
  if (f.has("tokenizer.ggml.model")) m->tokenizer_ = Tokenizer::from_gguf(f);
  // Every weight now lives in the model's own buffers: drop the file's pages from the resident
  // set (otherwise a bf16 model is counted twice).
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

void Model::embed(const int32_t* tokens, int n, float* out) const {
  const int D = config_.d_model;
  for (int i = 0; i < n; ++i) {
    check_token(tokens[i]);
    std::memcpy(out + static_cast<int64_t>(i) * D,
                w_.token_embd.data() + static_cast<int64_t>(tokens[i]) * D, sizeof(float) * D);
  }
}

void Model::lm_head(const float* hidden_rows, int rows, float* logits) const {
  std::vector<float> normed(static_cast<size_t>(rows) * config_.d_model);
  kernels::rmsnorm(hidden_rows, w_.output_norm.data(), rows, config_.d_model, config_.rms_eps,
                   normed.data());
  w_.lm_head.forward(normed.data(), rows, logits);
}

double Model::linear_flops_per_token() const {
  const ModelConfig& c = config_;
  const double D = c.d_model, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  return 2.0 * c.n_layer * (D * qd + 2 * D * kvd + qd * D + 3 * D * c.d_ff);
}

double Model::full_prefill_flops(int n) const {
  const ModelConfig& c = config_;
  const double attention = 4.0 * c.n_head * c.head_dim * (static_cast<double>(n) * (n + 1) / 2);
  return linear_flops_per_token() * n + c.n_layer * attention + 2.0 * c.d_model * c.n_vocab;
}

int64_t Model::decode_weight_bytes() const {
  const ModelConfig& c = config_;
  int64_t b = w_.lm_head.weight_bytes();
  for (const LayerWeights& lw : w_.layers) {
    for (const kernels::Linear* l : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) {
      b += l->weight_bytes();
    }
  }
  const int64_t norms = (2 * static_cast<int64_t>(c.n_layer) + 1) * c.d_model;
  return b + (norms + c.d_model) * static_cast<int64_t>(sizeof(float));
}

PrefillOutput Model::prefill(const std::vector<int32_t>& tokens, Policy& policy, KVCache& cache,
                             const std::vector<int>& logit_rows,
                             const PrefillProgressFn& progress) const {
  const ModelConfig& c = config_;
  const int N = static_cast<int>(tokens.size());
  if (N == 0) fail("prefill needs at least one token");
  for (int r : logit_rows) {
    if (r < 0 || r >= N) fail("logit row ", r, " is outside the prompt (", N, " tokens)");
  }
  PrefillOutput out;
  PrefillStats& st = out.stats;
  st.n_prompt = N;
  Activations a;
  a.resize(N, c);
  a.pos.resize(N);
  std::iota(a.pos.begin(), a.pos.end(), 0);
  std::vector<int32_t> pass_tokens = tokens;  // the tokens of the current pass
  embed(pass_tokens.data(), N, a.hidden.data());
  const bool bf16_cache = backend_ == kernels::Backend::kBf16;
  cache.reset(c.n_layer, bf16_cache);
  policy.begin(N, c.n_layer);
  const double per_layer_linear = linear_flops_per_token() / c.n_layer;
  std::vector<float> colsum;  // [H, n] for policies that want attention column sums

  int n = N;  // live tokens
  int pass = 0;
  PrefillStats::Seconds& sec = st.seconds;
  Lap lap;
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = w_.layers[l];
    st.live_tokens.push_back(n);
    // norm -> attention over the layer's full K/V of its n live tokens
    project_qkv(c, lw, rope_, n, a);
    lap.to(sec.qkv);
    if (backend_ == kernels::Backend::kBf16) {
      kernels::causal_attention_bf16(a.q.data(), a.k.data(), a.v.data(), n, c.n_head,
                                     c.n_head_kv, c.head_dim, a.attn.data());
    } else {
      kernels::causal_attention(a.q.data(), a.k.data(), a.v.data(), n, c.n_head, c.n_head_kv,
                                c.head_dim, a.attn.data());
    }
    st.attention_flops += 4.0 * c.n_head * c.head_dim * (static_cast<double>(n) * (n + 1) / 2);
    LayerInput in{l, c.n_layer, N, n, c.n_head, c.n_head_kv, c.head_dim,
                  a.q.data(), a.k.data(), a.v.data(), a.pos.data()};
    in.pass = pass;
    if (policy.wants_attention_column_sums(l, n)) {
      colsum.resize(static_cast<size_t>(c.n_head) * n);
      kernels::causal_attention_column_sums(a.q.data(), a.k.data(), n, c.n_head, c.n_head_kv,
                                            c.head_dim, colsum.data());
      st.scoring_flops += 4.0 * c.n_head * c.head_dim * (static_cast<double>(n) * (n + 1) / 2);
      in.attn_colsum = colsum.data();
    }
    lap.to(sec.attention);
    // select: what this layer's cache keeps, and which tokens go on
    LayerDecision dec = policy.on_layer(in);
    lap.to(sec.select);
    st.scoring_flops += static_cast<double>(dec.scoring_flops);
    if (dec.restart) {
      // Two-pass policies (GemFilter): start again from layer 0 on the chosen tokens only,
      // positions 0..T-1; the first pass's caches are discarded.
      if (pass > 0) fail("policy '", policy.name(), "' asked for a third prefill pass");
      if (!logit_rows.empty()) fail("logits of chosen rows need a policy that keeps every token");
      std::vector<int32_t> chosen;
      for (int32_t idx : *dec.restart) {
        if (idx < 0 || idx >= n) fail("policy restarted with token ", idx, " of ", n);
        if (!chosen.empty() && idx <= chosen.back()) fail("restart indices must ascend");
        chosen.push_back(idx);
      }
      if (chosen.empty()) fail("policy restarted with no tokens");
      std::vector<int32_t> next_tokens;
      for (int32_t idx : chosen) next_tokens.push_back(pass_tokens[a.pos[idx]]);
      pass_tokens = std::move(next_tokens);
      n = static_cast<int>(pass_tokens.size());
      a.pos.resize(n);
      std::iota(a.pos.begin(), a.pos.end(), 0);
      embed(pass_tokens.data(), n, a.hidden.data());
      cache.reset(c.n_layer, bf16_cache);
      st.live_tokens.clear();  // per-layer stats describe the final pass; FLOPs add up both
      st.kept_rows.clear();
      pass = 1;
      st.passes = 2;
      l = -1;  // the loop's ++l starts the second pass at layer 0
      continue;
    }
    store_cache(c, dec, a, n, cache.layer(l));
    st.kept_rows.push_back(cache.layer(l).rows());
    lap.to(sec.cache);
    // o_proj and MLP on all n live tokens
    output_and_mlp(c, lw, n, a);
    st.linear_flops += per_layer_linear * n;
    lap.to(sec.mlp);
    // gather: token-selective propagation
    if (dec.propagate) {
      if (!logit_rows.empty()) fail("logits of chosen rows need a policy that keeps every token");
      gather_live(*dec.propagate, n, c.d_model, a);
      n = static_cast<int>(dec.propagate->size());
    }
    lap.to(sec.gather);
    if (progress) progress({pass, l + 1, c.n_layer, N, n});
  }
  st.propagated = n;
  st.final_positions = a.pos;
  st.next_position = pass == 0 ? N : static_cast<int64_t>(pass_tokens.size());

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
  lap.to(sec.lm_head);
  return out;
}

std::vector<float> Model::decode(int32_t token, int64_t pos, KVCache& cache) const {
  const ModelConfig& c = config_;
  if (cache.n_layer() != c.n_layer) fail("decode needs a cache filled by prefill");
  const int d = c.head_dim, g = c.group_size();
  Activations a;
  a.resize(1, c);
  a.pos = {static_cast<int32_t>(pos)};
  embed(&token, 1, a.hidden.data());
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = w_.layers[l];
    project_qkv(c, lw, rope_, 1, a);
    LayerCache& lc = cache.layer(l);
    const int C = lc.n_heads();
    const int r = c.n_head / C;
    for (int ch = 0; ch < C; ++ch) {
      const int kvh = (ch * r) / g;
      lc.append(ch, a.k.data() + static_cast<int64_t>(kvh) * d,
                a.v.data() + static_cast<int64_t>(kvh) * d, static_cast<int32_t>(pos));
    }
#pragma omp parallel for if (kernels::worth_parallel(lc.rows() * d * 2))
    for (int ch = 0; ch < C; ++ch) {
      const HeadCache& hc = lc.heads[ch];
      const float* qh = a.q.data() + static_cast<int64_t>(ch) * r * d;
      float* oh = a.attn.data() + static_cast<int64_t>(ch) * r * d;
      if (lc.bf16) {
        kernels::attend_rows(qh, r, hc.kb.data(), hc.vb.data(), hc.len(), d, d, oh);
      } else {
        kernels::attend_rows(qh, r, hc.k.data(), hc.v.data(), hc.len(), d, d, oh);
      }
    }
    output_and_mlp(c, lw, 1, a);
  }
  std::vector<float> logits(c.n_vocab);
  lm_head(a.hidden.data(), 1, logits.data());
  return logits;
}

}  // namespace fastkv
