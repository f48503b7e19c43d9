// Unit tests of the tokenizers: BOS/EOS, special tokens, byte fallback, streaming, the merge
// rules on tiny hand-made vocabularies, metadata errors, robustness and speed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/gguf.h"
#include "test_util.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace fastkv {
namespace {

using Ids = std::vector<int32_t>;

std::unique_ptr<Tokenizer> load(const std::string& shared_relative) {
  const gguf::File f = gguf::File::open(test::shared_path(shared_relative));
  return Tokenizer::from_gguf(f);
}

std::unique_ptr<Tokenizer> load_bytes(const gguf::Writer& w, const std::string& name) {
  const gguf::File f = gguf::File::from_bytes(name, w.to_bytes());
  return Tokenizer::from_gguf(f);
}

// The message of the fastkv::Error that loading the image throws ("" when none is thrown).
std::string load_error(const gguf::Writer& w, const std::string& name) {
  try {
    load_bytes(w, name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// --- stories260K: SentencePiece, 512 entries, byte fallback --------------------------------

class TokenizerStories : public ::testing::Test {
 protected:
  void SetUp() override { tok_ = load("models/stories260K.gguf"); }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TokenizerStories, Metadata) {
  EXPECT_EQ(tok_->kind(), Tokenizer::Kind::kSentencePiece);
  EXPECT_EQ(tok_->model_name(), "llama");
  EXPECT_EQ(tok_->pre_name(), "default");
  EXPECT_EQ(tok_->n_vocab(), 512);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_TRUE(tok_->add_bos());  // no add_bos_token key: SentencePiece default
  EXPECT_TRUE(tok_->adds_space_prefix());
  EXPECT_TRUE(tok_->is_end_of_generation(2));
  EXPECT_FALSE(tok_->is_end_of_generation(1));
  EXPECT_FALSE(tok_->is_end_of_generation(403));
  EXPECT_EQ(tok_->find_token("\xE2\x96\x81Once"), 403);
  EXPECT_EQ(tok_->find_token("no such entry"), -1);
  EXPECT_EQ(tok_->token_text(1), "<s>");
}

TEST_F(TokenizerStories, BosOnlyWithAddSpecialAndNeverEos) {
  // Same ids as llama.cpp's tokenization in ../shared/golden/logits/stories260K.*.
  EXPECT_EQ(tok_->encode("Once upon a time", true, false), (Ids{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok_->encode("Once upon a time", false, false), (Ids{403, 407, 261, 378}));
  EXPECT_EQ(tok_->encode("", true, false), (Ids{1}));
  EXPECT_EQ(tok_->encode("", false, false), Ids{});
}

TEST_F(TokenizerStories, DecodeRemovesTheAddedSpaceOnly) {
  EXPECT_EQ(tok_->decode({1, 403, 407, 261, 378}), "Once upon a time");
  EXPECT_EQ(tok_->decode({1, 403, 407, 261, 378}, /*render_special=*/true), "<s>Once upon a time");
  EXPECT_EQ(tok_->decode({403, 407}), "Once upon");
  EXPECT_EQ(tok_->token_to_piece(403), " Once");
  EXPECT_EQ(tok_->token_to_piece(1), "");
  EXPECT_EQ(tok_->token_to_piece(1, true), "<s>");
  for (const char* s : {" Once", "  two  spaces ", "\n", "a\tb\r\nc", "Lily's \"cat\"!"}) {
    EXPECT_EQ(tok_->decode(tok_->encode(s, true, false)), s) << s;
  }
}

TEST_F(TokenizerStories, SpecialTokensParsedOnlyWhenAsked) {
  // parse_special: "<s>" is the BOS token, and the text after it gets the leading space.
  EXPECT_EQ(tok_->encode("<s>Once", false, true), (Ids{1, 403}));
  EXPECT_EQ(tok_->encode("Once<s>", false, true), (Ids{403, 1}));
  // Otherwise it is text.
  const Ids plain = tok_->encode("<s>Once", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(tok_->decode(plain), "<s>Once");
  EXPECT_EQ(tok_->decode(tok_->encode("<s>Once", false, true), true), "<s>Once");
}

TEST_F(TokenizerStories, ByteFallbackForMissingCharacters) {
  // "日" (E6 97 A5) is not among the 512 entries: "▁" then its three byte tokens (<0xNN> is
  // id 3 + NN in this vocabulary).
  ASSERT_EQ(tok_->find_token("\xE6\x97\xA5"), -1);
  const Ids ids = tok_->encode("\xE6\x97\xA5", false, false);
  EXPECT_EQ(ids, (Ids{tok_->find_token("\xE2\x96\x81"), 3 + 0xE6, 3 + 0x97, 3 + 0xA5}));
  EXPECT_EQ(tok_->token_text(3 + 0xE6), "<0xE6>");
  EXPECT_EQ(tok_->token_to_piece(3 + 0xE6), "\xE6");
  EXPECT_EQ(tok_->decode(ids), "\xE6\x97\xA5");
  // Also inside a word, and for invalid UTF-8, which falls back byte by byte.
  for (const char* s : {"a\xE6\x97\xA5z", "\xFF\xFE", "x\xC3", "\xE6\x97"}) {
    EXPECT_EQ(tok_->decode(tok_->encode(s, false, false)), s);
  }
}

TEST_F(TokenizerStories, StreamDecoderHoldsBackIncompleteCharacters) {
  const Ids ids = tok_->encode("Once \xE6\x97\xA5!", true, false);
  // <s> ▁Once ▁ <0xE6> <0x97> <0xA5> !
  ASSERT_EQ(ids.size(), 7u);
  StreamDecoder sd(*tok_);
  EXPECT_EQ(sd.push(ids[0]), "");      // BOS renders as nothing
  EXPECT_EQ(sd.push(ids[1]), "Once");  // the added leading space is dropped
  EXPECT_EQ(sd.push(ids[2]), " ");
  EXPECT_EQ(sd.push(ids[3]), "");  // E6: held back
  EXPECT_EQ(sd.push(ids[4]), "");  // E6 97: held back
  EXPECT_EQ(sd.push(ids[5]), "\xE6\x97\xA5");
  EXPECT_EQ(sd.push(ids[6]), "!");
  EXPECT_EQ(sd.flush(), "");

  // A truncated character comes out at flush; a continuation keeps its leading space.
  StreamDecoder cont(*tok_, /*at_text_start=*/false);
  EXPECT_EQ(cont.push(403), " Once");
  EXPECT_EQ(cont.push(3 + 0xE6), "");
  EXPECT_EQ(cont.flush(), "\xE6");
  EXPECT_EQ(cont.flush(), "");

  // Bytes that can never start a character are not held back.
  StreamDecoder bad(*tok_);
  EXPECT_EQ(bad.push(3 + 0xFF), "\xFF");
  EXPECT_THROW(bad.push(512), Error);
}

TEST_F(TokenizerStories, BadIdsThrow) {
  EXPECT_THROW(tok_->token_text(-1), Error);
  EXPECT_THROW(tok_->token_text(512), Error);
  EXPECT_THROW(tok_->token_to_piece(512), Error);
  EXPECT_THROW(tok_->decode({1, 99999}), Error);
  EXPECT_FALSE(tok_->is_end_of_generation(-1));
  EXPECT_FALSE(tok_->is_special(512));
}

// --- Special tokens in the bigger vocabularies ---------------------------------------------

TEST(TokenizerSpecialTokens, Phi3ChatMarkers) {
  auto tok = load("tokenizer/ggml-vocab-phi-3.gguf");
  const std::string chat = "<|user|>\nHi there<|end|>\n<|assistant|>";
  const Ids ids = tok->encode(chat, true, true);
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids.front(), 1);  // BOS
  EXPECT_EQ(ids[1], tok->find_token("<|user|>"));
  EXPECT_EQ(ids.back(), tok->find_token("<|assistant|>"));
  EXPECT_TRUE(tok->is_end_of_generation(tok->find_token("<|end|>")));
  EXPECT_TRUE(tok->is_end_of_generation(tok->eos_id()));
  EXPECT_EQ(tok->decode(ids, true), "<s>" + chat);
  const Ids plain = tok->encode(chat, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), tok->find_token("<|user|>")), 0);
  EXPECT_EQ(tok->decode(plain), chat);
}

TEST(TokenizerSpecialTokens, Gpt2EndOfText) {
  auto tok = load("tokenizer/ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(tok->kind(), Tokenizer::Kind::kBytePairEncoding);
  EXPECT_FALSE(tok->add_bos());  // no add_bos_token key: GPT-2 style default
  EXPECT_EQ(tok->encode("Hello", true, false), tok->encode("Hello", false, false));
  EXPECT_EQ(tok->encode("a<|endoftext|>b", false, true),
            (Ids{tok->find_token("a"), 50256, tok->find_token("b")}));
  const Ids plain = tok->encode("a<|endoftext|>b", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(tok->decode(plain), "a<|endoftext|>b");
  EXPECT_EQ(tok->token_to_piece(50256), "");
  EXPECT_EQ(tok->token_to_piece(50256, true), "<|endoftext|>");
  EXPECT_TRUE(tok->is_end_of_generation(50256));
}

TEST(TokenizerSpecialTokens, UserDefinedTokensAlwaysMatch) {
  // MPT's added tokens for runs of spaces are matched even without parse_special, as the
  // reference tokenizer does (the golden vectors depend on it).
  auto tok = load("tokenizer/ggml-vocab-mpt.gguf");
  const Ids ids = tok->encode("a    b", false, false);
  EXPECT_EQ(ids, (Ids{tok->find_token("a"), tok->find_token("    "), tok->find_token("b")}));
  EXPECT_EQ(tok->decode(ids), "a    b");
}

// --- Robustness ----------------------------------------------------------------------------

TEST(TokenizerRobustness, ArbitraryBytesRoundTripThroughByteLevelBpe) {
  auto tok = load("tokenizer/ggml-vocab-gpt-2.gguf");
  std::mt19937 rng(42);
  for (int iter = 0; iter < 200; ++iter) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    const Ids ids = tok->encode(s, false, true);
    EXPECT_EQ(tok->decode(ids, true), s);
  }
}

TEST(TokenizerRobustness, ArbitraryBytesRoundTripThroughSentencePiece) {
  // Any bytes, leading spaces and invalid UTF-8 included (byte fallback), round trip; only a
  // literal U+2581 cannot (it is the escaped space), and random bytes practically never
  // contain one.
  auto tok = load("tokenizer/ggml-vocab-llama-spm.gguf");
  std::mt19937 rng(7);
  for (int iter = 0; iter < 200; ++iter) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    if (iter % 4 == 0) s = " " + s;
    ASSERT_EQ(s.find("\xE2\x96\x81"), std::string::npos);
    const Ids ids = tok->encode(s, false, false);
    EXPECT_EQ(tok->decode(ids), s);
  }
}

// --- The algorithms on hand-made vocabularies ----------------------------------------------

gguf::Writer spm_writer(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                        const std::vector<int32_t>& types) {
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  return w;
}

TEST(TokenizerSpmMerges, HighestScoreFirstTiesLeftmost) {
  // "aba": "ab" and "ba" compete for the middle "b".
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "a", "b", "ab", "ba"};
  const std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1};
  {
    auto w = spm_writer(tokens, {0, 0, 0, -5, -5, -1, -2}, types);
    w.set_bool("tokenizer.ggml.add_space_prefix", false);
    auto tok = load_bytes(w, "ab.gguf");
    EXPECT_EQ(tok->encode("aba", false, false), (Ids{5, 3}));  // ab wins
  }
  {
    auto w = spm_writer(tokens, {0, 0, 0, -5, -5, -2, -1}, types);
    w.set_bool("tokenizer.ggml.add_space_prefix", false);
    auto tok = load_bytes(w, "ba.gguf");
    EXPECT_EQ(tok->encode("aba", false, false), (Ids{3, 6}));  // ba wins
  }
  {
    auto w = spm_writer(tokens, {0, 0, 0, -5, -5, -1, -1}, types);
    w.set_bool("tokenizer.ggml.add_space_prefix", false);
    w.set_bool("tokenizer.ggml.add_eos_token", true);
    auto tok = load_bytes(w, "tie.gguf");
    EXPECT_EQ(tok->encode("aba", false, false), (Ids{5, 3}));       // tie: leftmost
    EXPECT_EQ(tok->encode("aba", true, false), (Ids{1, 5, 3, 2}));  // BOS and EOS
    EXPECT_FALSE(tok->adds_space_prefix());
    // No byte tokens: a missing character becomes <unk>.
    EXPECT_EQ(tok->encode("axb", false, false), (Ids{3, 0, 4}));
  }
}

TEST(TokenizerBpeMerges, LowestRankFirst) {
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "ab", "bc", "abc", "<|end|>"});
  w.set_i32_array("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 3});
  w.set_string_array("tokenizer.ggml.merges", {"b c", "a b", "a bc"});
  w.set_u32("tokenizer.ggml.eos_token_id", 6);
  auto tok = load_bytes(w, "bpe.gguf");
  EXPECT_EQ(tok->pre_name(), "default");
  EXPECT_EQ(tok->encode("abc", false, false), (Ids{5}));  // b+c, then a+bc
  EXPECT_EQ(tok->encode("abab", false, false), (Ids{3, 3}));
  EXPECT_EQ(tok->encode("cab", false, false), (Ids{2, 3}));
  // Bytes without an entry are dropped (there is no unknown token).
  EXPECT_EQ(tok->encode("axc", false, false), (Ids{0, 2}));
  EXPECT_TRUE(tok->is_end_of_generation(6));
}

TEST(TokenizerBpeMerges, Llama3TakesWholeEntriesWithoutMerges) {
  for (const char* pre : {"llama3", "gpt-2"}) {
    gguf::Writer w;
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", pre);
    w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "abc"});
    w.set_string_array("tokenizer.ggml.merges", {});
    auto tok = load_bytes(w, "l3.gguf");
    EXPECT_EQ(tok->encode("abc", false, false),
              std::string(pre) == "llama3" ? Ids{3} : (Ids{0, 1, 2}))
        << pre;
  }
}

// --- Pre-tokenizers ------------------------------------------------------------------------

std::vector<std::string> pieces(const char* name, std::string_view text) {
  PreTokenizer pre(name);
  std::vector<std::string_view> views;
  pre.split(text, views);
  return std::vector<std::string>(views.begin(), views.end());
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizers, SplitRules) {
  EXPECT_EQ(pieces("gpt-2", "Hello world's  123!!"),
            (Pieces{"Hello", " world", "'s", " ", " 123", "!!"}));
  EXPECT_EQ(pieces("gpt-2", "a \n\n b  "), (Pieces{"a", " \n\n", " b", "  "}));
  EXPECT_EQ(pieces("starcoder", "abc 123"), (Pieces{"abc", " ", "1", "2", "3"}));
  EXPECT_EQ(pieces("smollm", "x=42"), (Pieces{"x", "=", "4", "2"}));
  EXPECT_EQ(pieces("llama3", "Hello 12345\n\nworld"),
            (Pieces{"Hello", " ", "123", "45", "\n\n", "world"}));
  EXPECT_EQ(pieces("llama3", "I'M here"), (Pieces{"I", "'M", " here"}));
  EXPECT_EQ(pieces("qwen2", "12345"), (Pieces{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(pieces("falcon", "a+=b; 1234567"),
            (Pieces{"a", "+=", "b", ";", " ", "123", "456", "7"}));
  EXPECT_EQ(pieces("deepseek-coder", "ab1\ncd, 22"),
            (Pieces{"ab", "1", "\n", "cd", ",", " ", "2", "2"}));
  EXPECT_EQ(pieces("deepseek-llm", "Ελληνικά 123 \xE4\xB8\xAD\xE6\x96\x87!"),
            (Pieces{"Ελληνικά", " ", "123", " ", "\xE4\xB8\xAD\xE6\x96\x87", "!"}));
  // Each regex splits the pieces of the previous ones: the ASCII punctuation class [!-/:-~]
  // also covers A-Z and a-z, so it cuts Latin words around other letters.
  EXPECT_EQ(pieces("deepseek-llm", "Straße"), (Pieces{"Stra", "ß", "e"}));
}

TEST(PreTokenizers, InvalidUtf8BytesArePiecesOfTheirOwn) {
  EXPECT_EQ(pieces("gpt-2",
                   "ab\xFF"
                   "cd \xC3"),
            (Pieces{"ab", "\xFF", "cd", " ", "\xC3"}));
  EXPECT_EQ(pieces("gpt-2", ""), Pieces{});
}

TEST(PreTokenizers, EveryNamedRuleCompiles) {
  const std::string names = PreTokenizer::supported_names();
  size_t start = 0;
  int count = 0;
  while (start < names.size()) {
    size_t comma = names.find(", ", start);
    const std::string name =
        names.substr(start, comma == std::string::npos ? comma : comma - start);
    ASSERT_TRUE(PreTokenizer::is_supported(name)) << name;
    const std::string text =
        "Hello, World! It's 2024 \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC\n\tend  ";
    std::string joined;
    for (const std::string& p : pieces(name.c_str(), text)) {
      EXPECT_FALSE(p.empty()) << name;
      joined += p;
    }
    EXPECT_EQ(joined, text) << name;
    ++count;
    if (comma == std::string::npos) break;
    start = comma + 2;
  }
  EXPECT_GE(count, 12);
  EXPECT_FALSE(PreTokenizer::is_supported("nonesuch"));
}

// --- Metadata errors -----------------------------------------------------------------------

gguf::Writer good_spm() {
  return spm_writer({"<unk>", "<s>", "</s>", "a"}, {0, 0, 0, -1}, {2, 3, 3, 1});
}

TEST(TokenizerMetadataErrors, NoTokenizer) {
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  EXPECT_EQ(load_error(w, "bare.gguf"), "bare.gguf: no tokenizer (tokenizer.ggml.model missing)");
}

TEST(TokenizerMetadataErrors, MissingTokens) {
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "llama");
  EXPECT_EQ(load_error(w, "notok.gguf"),
            "notok.gguf: missing required key 'tokenizer.ggml.tokens'");
}

TEST(TokenizerMetadataErrors, EmptyTokens) {
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {});
  EXPECT_EQ(load_error(w, "empty.gguf"), "empty.gguf: tokenizer.ggml.tokens is empty");
}

TEST(TokenizerMetadataErrors, ScoresLengthMismatch) {
  gguf::Writer w = good_spm();
  w.set_f32_array("tokenizer.ggml.scores", {0, 0});
  EXPECT_EQ(load_error(w, "scores.gguf"),
            "scores.gguf: tokenizer.ggml.scores has 2 entries but tokenizer.ggml.tokens has 4");
}

TEST(TokenizerMetadataErrors, TokenTypeLengthMismatch) {
  gguf::Writer w = good_spm();
  w.set_i32_array("tokenizer.ggml.token_type", {1, 1, 1, 1, 1});
  EXPECT_EQ(load_error(w, "types.gguf"),
            "types.gguf: tokenizer.ggml.token_type has 5 entries but tokenizer.ggml.tokens has 4");
}

TEST(TokenizerMetadataErrors, UnknownModel) {
  gguf::Writer w = good_spm();
  w.set_string("tokenizer.ggml.model", "bert");
  const std::string msg = load_error(w, "bert.gguf");
  EXPECT_EQ(msg.rfind("bert.gguf: unsupported tokenizer model 'bert'", 0), 0u) << msg;
  EXPECT_NE(msg.find("supported: llama"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gpt2"), std::string::npos) << msg;
}

TEST(TokenizerMetadataErrors, UnknownPreTokenizer) {
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "nonesuch");
  w.set_string_array("tokenizer.ggml.tokens", {"a"});
  w.set_string_array("tokenizer.ggml.merges", {});
  const std::string msg = load_error(w, "pre.gguf");
  EXPECT_EQ(msg.rfind("pre.gguf: unsupported pre-tokenizer 'nonesuch'", 0), 0u) << msg;
  EXPECT_NE(msg.find("starcoder"), std::string::npos) << msg;
}

TEST(TokenizerMetadataErrors, BpeWithoutMergesOrWithBadMerges) {
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab"});
  EXPECT_EQ(load_error(w, "nomerges.gguf"),
            "nomerges.gguf: missing required key 'tokenizer.ggml.merges'");
  w.set_string_array("tokenizer.ggml.merges", {"a b", "ab"});
  EXPECT_EQ(load_error(w, "badmerge.gguf"),
            "badmerge.gguf: tokenizer.ggml.merges[1] = 'ab' is not two tokens separated by a "
            "space");
}

TEST(TokenizerMetadataErrors, SpecialIdOutOfRange) {
  gguf::Writer w = good_spm();
  w.set_u32("tokenizer.ggml.bos_token_id", 7);
  EXPECT_EQ(load_error(w, "bos.gguf"),
            "bos.gguf: tokenizer.ggml.bos_token_id = 7 is out of range (the vocabulary has 4 "
            "tokens)");
  w = good_spm();
  w.set_i32("tokenizer.ggml.eos_token_id", -3);
  EXPECT_EQ(load_error(w, "eos.gguf"),
            "eos.gguf: tokenizer.ggml.eos_token_id = -3 is out of range (the vocabulary has 4 "
            "tokens)");
  // -1 and 0xFFFFFFFF mean "none" (stories260K stores its padding id that way).
  w = good_spm();
  w.set_u32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);
  w.set_i32("tokenizer.ggml.eos_token_id", -1);
  EXPECT_EQ(load_error(w, "none.gguf"), "");
  EXPECT_EQ(load_bytes(w, "none.gguf")->eos_id(), -1);
}

TEST(TokenizerMetadataErrors, WrongTypes) {
  gguf::Writer w = good_spm();
  w.set_string("tokenizer.ggml.scores", "high");
  const std::string msg = load_error(w, "type.gguf");
  EXPECT_EQ(msg.rfind("type.gguf: key 'tokenizer.ggml.scores' has type", 0), 0u) << msg;
  w = good_spm();
  w.set_i32_array("tokenizer.ggml.token_type", {1, 9, 1, 1});
  EXPECT_EQ(load_error(w, "tt.gguf"),
            "tt.gguf: tokenizer.ggml.token_type[1] = 9 is not a token type (0..6)");
}

// --- Speed ---------------------------------------------------------------------------------

double seconds_to_encode(const Tokenizer& tok, const std::string& text, size_t* n_tokens) {
  const auto t0 = std::chrono::steady_clock::now();
  *n_tokens = tok.encode(text, true, false).size();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string prose(size_t min_bytes) {
  const std::string para =
      "The quick brown fox jumps over the lazy dog; it was 1,234 times faster than 56.7% of "
      "the foxes in the forest. \"Isn't it?\" she asked, and smiled.\n\tCode: x = f(y) + 42;\n";
  std::string s;
  while (s.size() < min_bytes) s += para;
  return s;
}

TEST(TokenizerSpeed, ThirtyThousandTokensWellUnderASecond) {
  for (const char* vocab :
       {"tokenizer/ggml-vocab-gpt-2.gguf", "tokenizer/ggml-vocab-llama-spm.gguf",
        "tokenizer/ggml-vocab-deepseek-llm.gguf"}) {
    auto tok = load(vocab);
    size_t n = 0;
    const double s = seconds_to_encode(*tok, prose(150000), &n);
    EXPECT_GE(n, 30000u) << vocab;
    EXPECT_LT(s, 1.0) << vocab << ": " << n << " tokens took " << s << " s";
  }
}

TEST(TokenizerSpeed, LongTextsWithoutSpacesAreNotQuadratic) {
  std::mt19937 rng(1);
  std::string letters(200000, 'a');
  for (char& c : letters) c = static_cast<char>('a' + rng() % 26);
  const std::string spaces(200000, ' ');
  const std::string same(200000, 'a');
  for (const char* vocab :
       {"tokenizer/ggml-vocab-gpt-2.gguf", "tokenizer/ggml-vocab-llama-spm.gguf"}) {
    auto tok = load(vocab);
    for (const std::string* text : std::vector<const std::string*>{&letters, &spaces, &same}) {
      size_t n = 0;
      const double s = seconds_to_encode(*tok, *text, &n);
      EXPECT_LT(s, 1.0) << vocab << ": " << text->size() << " bytes took " << s << " s";
      EXPECT_GT(n, 0u);
    }
  }
}

}  // namespace
}  // namespace fastkv
