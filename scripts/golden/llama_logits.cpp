// llama_logits: llama.cpp's logits for one model and one token sequence, written as a fastkv
// logits golden (the format of ../shared/golden/logits/, see ../shared/README.md).
//
// A developer tool, not part of fastkv's build: scripts/make-quant-goldens.sh compiles it against
// a llama.cpp build (llama.h, gguf.h) and runs it. It is fastkv's own code, written against
// llama.cpp's public C API.
//
//   llama_logits MODEL.gguf OUT.gguf --text-file F --n-tokens N --positions all|K
//                [--greedy S] [--model-name NAME] [--source TEXT] [--threads T]
//
// What it computes, all on llama.cpp's CPU backend with the weights as stored in MODEL:
//   1. tokens: llama_tokenize of the text (BOS added where the vocabulary adds one), cut to the
//      first N tokens (an error when the text is shorter);
//   2. one llama_decode over the whole sequence at positions 0..N-1 (n_batch = n_ubatch = N, so
//      one graph), keeping the logits of the stored positions (all N, or K positions spread
//      evenly over the sequence, the last position always included);
//   3. a greedy continuation of S tokens: argmax of the last position's logits, then one
//      llama_decode of a single token per step at positions N, N+1, ...; the logits each step
//      chose from are kept too.
// Flash attention is off and the KV cache is llama.cpp's default (F16); weight repacking into
// "extra" buffer types is off (use_extra_bufts = false: its AMX path crashes on the development
// machine, and without it the CPU backend runs the stored blocks with its generic kernels).
//
// Output (GGUF, general.architecture "golden"): metadata golden.kind = "logits", golden.model
// (NAME, default: MODEL's file name), golden.n_vocab (u32), golden.source (TEXT); tensors
//   tokens        I32 [N]             the input sequence
//   positions     I32 [M]             the positions whose logits are stored
//   logits        F16 ne=[V, M]       their logits
//   greedy        I32 [S]             the greedy continuation
//   greedy_logits F16 ne=[V, S]       column s: the logits greedy[s] was the argmax of (column 0
//                                     is the last position's, decoded with the whole sequence;
//                                     column s > 0 comes from decoding greedy[s-1] alone at
//                                     position N+s-1)
// The first four are exactly the shared goldens' tensors, so fastkv's golden readers take these
// files as they are; greedy_logits is extra (the margins of the continuation, for the tests).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ggml.h"
#include "gguf.h"
#include "llama.h"

namespace {

struct Args {
  std::string model, out, text_file, model_name, source;
  int n_tokens = 0;
  int n_positions = 0;  // 0: all
  int greedy = 32;
  int threads = 2;
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::exit(1);
}

int to_int(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < 1 || x > 1000000) die(flag + " wants a positive integer");
  return static_cast<int>(x);
}

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(s + " needs a value");
      return argv[++i];
    };
    if (s == "--text-file") a.text_file = value();
    else if (s == "--n-tokens") a.n_tokens = to_int(s, value());
    else if (s == "--positions") {
      const std::string v = value();
      a.n_positions = v == "all" ? 0 : to_int(s, v);
    } else if (s == "--greedy") a.greedy = to_int(s, value());
    else if (s == "--model-name") a.model_name = value();
    else if (s == "--source") a.source = value();
    else if (s == "--threads") a.threads = to_int(s, value());
    else if (!s.empty() && s[0] == '-') die("unknown option " + s);
    else pos.push_back(s);
  }
  if (pos.size() != 2 || a.text_file.empty() || a.n_tokens == 0) {
    die("usage: llama_logits MODEL.gguf OUT.gguf --text-file F --n-tokens N --positions all|K "
        "[--greedy S] [--model-name NAME] [--source TEXT] [--threads T]");
  }
  a.model = pos[0];
  a.out = pos[1];
  if (a.model_name.empty()) {
    const size_t slash = a.model.find_last_of('/');
    a.model_name = slash == std::string::npos ? a.model : a.model.substr(slash + 1);
  }
  return a;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// K positions spread evenly over [0, n), the last one always included, ascending, distinct.
std::vector<int> spread_positions(int n, int k) {
  if (k == 0 || k >= n) {
    std::vector<int> all(n);
    for (int i = 0; i < n; ++i) all[i] = i;
    return all;
  }
  std::vector<int> p;
  for (int j = 0; j < k; ++j) {
    // j = k-1 gives n-1; earlier ones at (j+1)·n/k - 1.
    p.push_back(static_cast<int>((static_cast<long long>(j + 1) * n) / k) - 1);
  }
  p.erase(std::unique(p.begin(), p.end()), p.end());
  return p;
}

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

// Runs one llama_decode over `tokens` at positions first..first+n-1 of sequence 0, asking for
// the logits of the batch indices in `want` (sorted). Throws on failure.
void decode(llama_context* ctx, const std::vector<llama_token>& tokens, int first,
            const std::vector<int>& want) {
  const int n = static_cast<int>(tokens.size());
  llama_batch b = llama_batch_init(n, 0, 1);
  b.n_tokens = n;
  size_t w = 0;
  for (int i = 0; i < n; ++i) {
    b.token[i] = tokens[i];
    b.pos[i] = first + i;
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    const bool out = w < want.size() && want[w] == i;
    if (out) ++w;
    b.logits[i] = out;
  }
  const int rc = llama_decode(ctx, b);
  llama_batch_free(b);
  if (rc != 0) throw std::runtime_error("llama_decode returned " + std::to_string(rc));
}

void quiet_log(ggml_log_level level, const char* text, void*) {
  if (level >= GGML_LOG_LEVEL_WARN) std::fputs(text, stderr);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  llama_log_set(quiet_log, nullptr);
  llama_backend_init();

  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.use_extra_bufts = false;  // no weight repacking (see the header comment)
  llama_model* model = llama_model_load_from_file(a.model.c_str(), mp);
  if (model == nullptr) die("llama.cpp could not load " + a.model);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int V = llama_vocab_n_tokens(vocab);

  // 1. the token sequence
  const std::string text = read_text(a.text_file);
  std::vector<llama_token> tokens(text.size() + 8);
  const int nt = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()),
                                tokens.data(), static_cast<int32_t>(tokens.size()),
                                /*add_special=*/true, /*parse_special=*/false);
  if (nt < 0) die("tokenisation failed");
  if (nt < a.n_tokens) {
    die("the text has " + std::to_string(nt) + " tokens, fewer than --n-tokens " +
        std::to_string(a.n_tokens));
  }
  tokens.resize(a.n_tokens);
  const int N = a.n_tokens;
  const int S = a.greedy;

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(N + S + 16);
  cp.n_batch = static_cast<uint32_t>(N);
  cp.n_ubatch = static_cast<uint32_t>(N);
  cp.n_seq_max = 1;
  cp.n_threads = a.threads;
  cp.n_threads_batch = a.threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) die("llama.cpp could not create a context");

  // 2. the whole sequence in one decode
  const std::vector<int> positions = spread_positions(N, a.n_positions);
  const int M = static_cast<int>(positions.size());
  std::vector<float> logits(static_cast<size_t>(V) * M);        // [M][V]
  std::vector<float> greedy_logits(static_cast<size_t>(V) * S);  // [S][V]
  std::vector<int> want = positions;
  if (want.back() != N - 1) want.push_back(N - 1);  // the continuation starts from the last
  std::vector<llama_token> greedy;
  try {
    decode(ctx, tokens, 0, want);
    for (int m = 0; m < M; ++m) {
      const float* l = llama_get_logits_ith(ctx, positions[m]);
      if (l == nullptr) die("no logits for position " + std::to_string(positions[m]));
      std::copy(l, l + V, logits.begin() + static_cast<size_t>(m) * V);
    }
    // 3. the greedy continuation, one token per decode
    const float* l = llama_get_logits_ith(ctx, N - 1);
    for (int s = 0; s < S; ++s) {
      if (l == nullptr) die("no logits at greedy step " + std::to_string(s));
      std::copy(l, l + V, greedy_logits.begin() + static_cast<size_t>(s) * V);
      greedy.push_back(argmax(l, V));
      if (s + 1 < S) {
        decode(ctx, {greedy.back()}, N + s, {0});
        l = llama_get_logits_ith(ctx, 0);
      }
    }
  } catch (const std::exception& e) {
    die(e.what());
  }

  // The golden file: tensors in one ggml context, metadata in a gguf context.
  const size_t bytes = (N + M + S) * sizeof(int32_t) + (static_cast<size_t>(V) * (M + S)) * 2 +
                       8 * ggml_tensor_overhead() + 1024;
  ggml_init_params ip = {bytes, nullptr, false};
  ggml_context* tctx = ggml_init(ip);
  auto i32 = [&](const char* name, const std::vector<int>& v) {
    ggml_tensor* t = ggml_new_tensor_1d(tctx, GGML_TYPE_I32, static_cast<int64_t>(v.size()));
    ggml_set_name(t, name);
    std::memcpy(t->data, v.data(), v.size() * sizeof(int32_t));
    return t;
  };
  auto f16 = [&](const char* name, const std::vector<float>& v, int cols) {
    ggml_tensor* t = ggml_new_tensor_2d(tctx, GGML_TYPE_F16, V, cols);
    ggml_set_name(t, name);
    ggml_fp32_to_fp16_row(v.data(), static_cast<ggml_fp16_t*>(t->data),
                          static_cast<int64_t>(V) * cols);
    return t;
  };
  gguf_context* g = gguf_init_empty();
  gguf_set_val_str(g, "general.architecture", "golden");
  gguf_set_val_str(g, "golden.kind", "logits");
  gguf_set_val_str(g, "golden.model", a.model_name.c_str());
  gguf_set_val_str(g, "golden.source", a.source.c_str());
  gguf_set_val_u32(g, "golden.n_vocab", static_cast<uint32_t>(V));
  gguf_add_tensor(g, i32("tokens", std::vector<int>(tokens.begin(), tokens.end())));
  gguf_add_tensor(g, i32("positions", positions));
  gguf_add_tensor(g, f16("logits", logits, M));
  gguf_add_tensor(g, i32("greedy", std::vector<int>(greedy.begin(), greedy.end())));
  gguf_add_tensor(g, f16("greedy_logits", greedy_logits, S));
  if (!gguf_write_to_file(g, a.out.c_str(), false)) die("cannot write " + a.out);

  std::printf("%s: %d tokens, %d positions, %d greedy tokens, n_vocab %d -> %s\n",
              a.model_name.c_str(), N, M, S, V, a.out.c_str());
  gguf_free(g);
  ggml_free(tctx);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
