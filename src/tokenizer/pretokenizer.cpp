#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <mutex>
#include <unordered_map>

#include "common/error.h"
#include "tokenizer/unicode.h"

namespace fastkv {

namespace {

// --- The split rules (facts about each model family's tokenizer) ---------------------------

// GPT-2's rule: English contractions, letters, digits, other symbols (each optionally with
// one leading space), then whitespace runs (leaving the last space to the next word).
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Llama 3 (tiktoken cl100k style): case-insensitive contractions, letters with one leading
// non-letter, numbers of at most three digits, symbols with trailing newlines, newlines.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen2: as Llama 3 but every digit on its own.
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Every digit alone (StarCoder-style "individual digits").
constexpr const char* kEachDigit = R"(\p{N})";

// Falcon: runs of punctuation (Unicode P plus the ASCII symbols $+<=>^~|`), then GPT-2's rule,
// then groups of three ASCII digits.
constexpr const char* kFalconPunct = R"([\p{P}\$\+<=>\^~\|`]+)";
constexpr const char* kThreeDigits = R"([0-9][0-9][0-9])";

// DeepSeek: line breaks alone, CJK runs.
constexpr const char* kLineBreak = R"([\r\n])";
constexpr const char* kCjk = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

// DeepSeek LLM: runs of cased letters (Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee,
// Glagolitic, Coptic, full-width Latin, Deseret, Osage, Old Hungarian, Warang Citi, Adlam ...)
// with an optional leading whitespace; ASCII and full-width punctuation runs; trailing
// whitespace; CJK runs; digit runs.
constexpr const char* kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})"
    R"(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D})"
    R"(\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4})"
    R"(\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4})"
    R"(\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124})"
    R"(\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})"
    R"(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
    R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17})"
    R"(\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3})"
    R"(\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";
constexpr const char* kDeepseekPunct =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
constexpr const char* kTrailingSpace = R"(\s+$)";
constexpr const char* kDigitRuns = R"(\p{N}+)";

// DeepSeek Coder: line breaks, letter runs, punctuation runs (each with an optional leading
// whitespace), CJK runs, single digits.
constexpr const char* kLetterRuns = R"(\s?\p{L}+)";
constexpr const char* kPunctRuns = R"(\s?\p{P}+)";

struct Rule {
  const char* name;
  std::vector<const char*> patterns;
  bool ignore_merges;
};

const std::vector<Rule>& rules() {
  static const std::vector<Rule> r = {
      {"default", {kGpt2}, false},
      {"gpt-2", {kGpt2}, false},
      {"gpt2", {kGpt2}, false},
      {"mpt", {kGpt2}, false},
      {"olmo", {kGpt2}, false},
      {"starcoder", {kEachDigit, kGpt2}, false},
      {"refact", {kEachDigit, kGpt2}, false},
      {"smollm", {kEachDigit, kGpt2}, false},
      {"command-r", {kEachDigit, kGpt2}, false},
      {"falcon", {kFalconPunct, kGpt2, kThreeDigits}, false},
      {"deepseek-llm",
       {kLineBreak, kDeepseekLetters, kDeepseekPunct, kTrailingSpace, kCjk, kDigitRuns},
       false},
      {"deepseek-coder", {kLineBreak, kLetterRuns, kPunctRuns, kCjk, kEachDigit}, false},
      {"llama3", {kLlama3}, true},
      {"llama-bpe", {kLlama3}, true},
      {"qwen2", {kQwen2}, false},
  };
  return r;
}

const Rule* find_rule(std::string_view name) {
  for (const Rule& r : rules()) {
    if (name == r.name) return &r;
  }
  return nullptr;
}

}  // namespace

struct PreTokenizer::Pattern {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Pattern() {
    if (code) pcre2_code_free(code);
  }
};

namespace {

std::shared_ptr<const PreTokenizer::Pattern> compile(const char* source) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<const PreTokenizer::Pattern>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(source);
  if (it != cache.end()) return it->second;

  auto p = std::make_shared<PreTokenizer::Pattern>();
  int err = 0;
  PCRE2_SIZE err_off = 0;
  p->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!p->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail("pre-tokenizer regex does not compile at offset ", err_off, ": ",
         reinterpret_cast<const char*>(msg));
  }
  p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
  cache.emplace(source, p);
  return p;
}

// Applies one pattern to `piece`: matches and the gaps between them, in order.
void split_one(const PreTokenizer::Pattern& pat, pcre2_match_data* md, std::string_view piece,
               std::vector<std::string_view>& out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  const size_t size = piece.size();
  size_t start = 0;    // where the next search begins
  size_t emitted = 0;  // end of what has been pushed
  while (start < size) {
    int rc = pcre2_match(pat.code, subject, size, start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Very long runs can exhaust the JIT stack; the interpreter keeps its frames on the heap.
      rc = pcre2_match(pat.code, subject, size, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md,
                       nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("pre-tokenizer regex failed on a ", size,
           "-byte piece: ", reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t m0 = ov[0], m1 = ov[1];
    if (m1 <= m0) {  // empty match: none of the rules produce one, but never loop on it
      start = m0 + unicode::char_length(piece, m0);
      continue;
    }
    if (m0 > emitted) out.push_back(piece.substr(emitted, m0 - emitted));
    out.push_back(piece.substr(m0, m1 - m0));
    emitted = start = m1;
  }
  if (emitted < size) out.push_back(piece.substr(emitted));
}

}  // namespace

bool PreTokenizer::is_supported(std::string_view name) {
  return find_rule(name) != nullptr;
}

std::string PreTokenizer::supported_names() {
  std::string s;
  for (const Rule& r : rules()) {
    if (!s.empty()) s += ", ";
    s += r.name;
  }
  return s;
}

PreTokenizer::PreTokenizer(std::string_view name) : name_(name) {
  const Rule* rule = find_rule(name);
  if (!rule) fail("unsupported pre-tokenizer '", name, "' (supported: ", supported_names(), ")");
  ignore_merges_ = rule->ignore_merges;
  for (const char* src : rule->patterns) patterns_.push_back(compile(src));
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return;
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  if (!md) throw std::bad_alloc();
  struct Guard {
    pcre2_match_data* md;
    ~Guard() { pcre2_match_data_free(md); }
  } guard{md};

  std::vector<std::string_view> cur, next;
  auto run_patterns = [&](std::string_view run) {
    cur.assign(1, run);
    for (const auto& pat : patterns_) {
      next.clear();
      for (std::string_view piece : cur) split_one(*pat, md, piece, next);
      cur.swap(next);
    }
    pieces.insert(pieces.end(), cur.begin(), cur.end());
  };

  // Valid UTF-8 runs go through the regexes; each invalid byte is a piece of its own.
  size_t run_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t n = unicode::valid_sequence_length(text, pos);
    if (n > 0) {
      pos += n;
      continue;
    }
    if (pos > run_start) run_patterns(text.substr(run_start, pos - run_start));
    pieces.push_back(text.substr(pos, 1));
    run_start = ++pos;
  }
  if (pos > run_start) run_patterns(text.substr(run_start, pos - run_start));
}

}  // namespace fastkv
