// llama_tokens: llama.cpp's token ids for every test string of a vocabulary test input, in the
// format of ../shared/tokenizer/*.out (one line per string: the ids separated by spaces).
//
// A developer tool, not part of fastkv's build: scripts/make-gemma-goldens.sh compiles it against
// a llama.cpp build (llama.h) and runs it. It is fastkv's own code, written against llama.cpp's
// public C API.
//
//   llama_tokens MODEL.gguf INPUT.inp OUTPUT.out
//
// INPUT holds the test strings, each followed by "\n__ggml_vocab_test__\n" (the shared .inp
// format). Each string is tokenized with llama_tokenize(add_special = false, parse_special =
// false), as the shared .out files and tests/tokenizer/golden_tokenizer.cpp do. Only the
// vocabulary is loaded (vocab_only), so the weights are never read.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::exit(1);
}

std::vector<std::string> read_inputs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str(), sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> r;
  size_t start = 0;
  for (size_t at; (at = all.find(sep, start)) != std::string::npos; start = at + sep.size()) {
    r.push_back(all.substr(start, at - start));
  }
  if (start < all.size()) die(path + ": text after the last separator");
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) die("usage: llama_tokens MODEL.gguf INPUT.inp OUTPUT.out");
  const std::vector<std::string> inputs = read_inputs(argv[2]);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (model == nullptr) die(std::string("cannot load ") + argv[1]);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::ofstream out(argv[3], std::ios::binary);
  if (!out) die(std::string("cannot write ") + argv[3]);
  for (const std::string& text : inputs) {
    // A first call with no room returns minus the number of tokens needed.
    const int need = -llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()),
                                     nullptr, 0, /*add_special=*/false, /*parse_special=*/false);
    std::vector<llama_token> ids(need > 0 ? need : 0);
    const int got = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()),
                                   ids.data(), static_cast<int32_t>(ids.size()), false, false);
    if (got < 0 || got != static_cast<int>(ids.size())) die("llama_tokenize failed");
    for (int i = 0; i < got; ++i) out << (i ? " " : "") << ids[i];
    out << '\n';
  }
  std::printf("%zu strings -> %s\n", inputs.size(), argv[3]);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
