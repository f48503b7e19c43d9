// Session (src/runtime/session.h) on stories260K with the full policy: decode at position N + t
// equals a prefill of the longer sequence, stop strings, max_tokens, streaming, the context check
// of generate() and EOS.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/gguf.h"
#include "model/model.h"
#include "runtime/generation.h"
#include "runtime/session.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

const std::string kPrompt = "Once upon a time";
// stories260K's greedy continuation of kPrompt (see ../shared/README.md).
const std::string kGreedyStart = ", there was a little girl named Lily. She loved to play outside "
                                 "in the park.";

std::string stories_path() { return test::shared_path("models/stories260K.gguf"); }

class SessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::exists(stories_path())) << stories_path() << " is missing (../shared)";
    model_ = Model::load(stories_path()).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(model_, nullptr); }

  static std::vector<int32_t> encode(const std::string& text) {
    return model_->require_tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/true);
  }
  static GenerationParams greedy(int max_tokens) {
    GenerationParams gp;
    gp.max_tokens = max_tokens;
    gp.sampling.temperature = 0.0f;
    return gp;
  }

  static Model* model_;
};
Model* SessionTest::model_ = nullptr;

// max|a - b| / max|b|
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double mx = 0, diff = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    mx = std::max(mx, std::fabs(static_cast<double>(b[i])));
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return diff / mx;
}

TEST_F(SessionTest, DecodeEqualsPrefillOfTheLongerSequence) {
  const std::vector<int32_t> all =
      encode("Once upon a time, there was a little girl named Lily. She loved to play outside.");
  ASSERT_GE(all.size(), 12u);
  const size_t N = 5;
  Session s(*model_, std::make_unique<FullMethod>());
  std::vector<float> logits = s.prefill(std::vector<int32_t>(all.begin(), all.begin() + N));
  EXPECT_EQ(s.next_position(), static_cast<int64_t>(N));
  for (size_t t = N; t < all.size(); ++t) {
    // Reference: one prefill of tokens 0..t-1, last-token logits; ours: prefill N + decodes.
    Session ref(*model_, nullptr);  // nullptr = the full policy
    const std::vector<float> expected = ref.prefill(std::vector<int32_t>(all.begin(), all.begin() + t));
    ASSERT_EQ(logits.size(), expected.size());
    EXPECT_LE(rel_diff(logits, expected), 1e-4) << "after " << t << " tokens (" << t - N
                                                << " decode steps)";
    logits = s.decode(all[t]);
    EXPECT_EQ(s.next_position(), static_cast<int64_t>(t + 1));
  }
  // Each decode step appended one row per cache head at the right position.
  for (int l = 0; l < s.cache().n_layer(); ++l) {
    const LayerCache& lc = s.cache().layer(l);
    for (int h = 0; h < lc.n_heads(); ++h) {
      ASSERT_EQ(lc.len(h), static_cast<int64_t>(all.size()));
      EXPECT_EQ(lc.positions(h).back(), static_cast<int32_t>(all.size() - 1));
    }
  }
}

// A generation makes room in the cache for its decode steps before the prefill
// (KVCache::set_decode_headroom): max_tokens of them, or what the context leaves.
TEST_F(SessionTest, GenerationReservesItsDecodeStepsInTheCache) {
  const std::vector<int32_t> prompt = encode(kPrompt);
  const int n = static_cast<int>(prompt.size());
  Session s(*model_, nullptr);
  s.generate(prompt, greedy(6));
  EXPECT_EQ(s.cache().decode_headroom(), 6);
  GenerationParams small = greedy(100);
  small.ctx_size = n + 10;  // the context leaves 10 tokens
  s.generate(prompt, small);
  EXPECT_EQ(s.cache().decode_headroom(), 10);
}

TEST_F(SessionTest, DecodeAtLatePositions) {
  // A longer prompt (beyond the 512 tokens stories260K was trained at: mechanics only).
  std::string text;
  for (int i = 0; i < 60; ++i) text += "Lily and Ben went to the park to play with a big red ball. ";
  const std::vector<int32_t> all = encode(text);
  ASSERT_GT(all.size(), 600u);
  const size_t N = all.size() - 4;
  Session s(*model_, nullptr);
  std::vector<float> logits = s.prefill(std::vector<int32_t>(all.begin(), all.begin() + N));
  for (size_t t = N; t < all.size(); ++t) logits = s.decode(all[t]);
  Session ref(*model_, nullptr);
  EXPECT_LE(rel_diff(logits, ref.prefill(all)), 1e-4);
}

TEST_F(SessionTest, GreedyGenerationMatchesTheKnownContinuation) {
  Session s(*model_, nullptr);
  GenerationResult r = s.generate(encode(kPrompt), greedy(30));
  EXPECT_EQ(r.text.rfind(kGreedyStart, 0), 0u) << "got: " << r.text;
  EXPECT_EQ(r.n_prompt, static_cast<int>(encode(kPrompt).size()));
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_EQ(r.tokens.size(), 30u);
  EXPECT_EQ(r.n_decode_steps, 29);
  EXPECT_GT(r.kv_bytes, 0);
  EXPECT_EQ(r.prefill.n_prompt, r.n_prompt);
}

TEST_F(SessionTest, MaxTokensIsRespected) {
  for (int n : {0, 1, 5, 17}) {
    Session s(*model_, nullptr);
    GenerationResult r = s.generate(encode(kPrompt), greedy(n));
    EXPECT_EQ(r.tokens.size(), static_cast<size_t>(n));
    EXPECT_EQ(r.finish_reason, "length");
    EXPECT_EQ(r.n_decode_steps, std::max(0, n - 1));
    EXPECT_EQ(r.text, model_->require_tokenizer().decode(r.tokens).substr(0, r.text.size()));
    if (n == 0) {
      EXPECT_EQ(r.text, "");
    }
  }
  Session s(*model_, nullptr);
  GenerationParams gp = greedy(-5);
  EXPECT_THROW(s.generate(encode(kPrompt), gp), Error);
}

TEST_F(SessionTest, StopStringsCutTheOutput) {
  Session s0(*model_, nullptr);
  const std::string full = s0.generate(encode(kPrompt), greedy(40)).text;
  ASSERT_EQ(full.rfind(kGreedyStart, 0), 0u) << full;

  struct Case {
    std::vector<std::string> stop;
    std::string expected;
  };
  const Case cases[] = {
      {{" named"}, ", there was a little girl"},
      {{"Lily. She"}, ", there was a little girl named "},  // spans several tokens
      {{"."}, ", there was a little girl named Lily"},
      {{"park", "girl"}, ", there was a little "},             // the earliest match wins
      {{"not in the text", "Lily"}, ", there was a little girl named "},
      {{","}, ""},                                             // the very first token
  };
  for (const Case& c : cases) {
    Session s(*model_, nullptr);
    GenerationParams gp = greedy(40);
    gp.stop = c.stop;
    std::string streamed;
    GenerationResult r = s.generate(encode(kPrompt), gp, [&](const std::string& chunk) {
      streamed += chunk;
      return true;
    });
    EXPECT_EQ(r.text, c.expected) << "stop '" << c.stop.front() << "'";
    EXPECT_EQ(r.finish_reason, "stop") << c.stop.front();
    EXPECT_EQ(streamed, r.text) << "stop '" << c.stop.front() << "': the stop string leaked";
    EXPECT_LT(r.tokens.size(), 40u);
  }
  // A stop string that never occurs changes nothing.
  Session s(*model_, nullptr);
  GenerationParams gp = greedy(40);
  gp.stop = {"zebra", ""};
  GenerationResult r = s.generate(encode(kPrompt), gp);
  EXPECT_EQ(r.text, full);
  EXPECT_EQ(r.finish_reason, "length");
}

TEST_F(SessionTest, StreamedChunksConcatenateToTheResultText) {
  for (int n : {1, 7, 60}) {
    Session s(*model_, nullptr);
    std::vector<std::string> chunks;
    GenerationResult r = s.generate(encode(kPrompt), greedy(n), [&](const std::string& c) {
      chunks.push_back(c);
      return true;
    });
    std::string joined;
    for (const std::string& c : chunks) joined += c;
    EXPECT_EQ(joined, r.text) << n << " tokens";
    EXPECT_FALSE(r.text.empty());
    EXPECT_GT(chunks.size(), n > 1 ? 1u : 0u);  // streamed as it goes, not in one piece
  }
  // Sampling at a temperature streams the same way.
  Session s(*model_, nullptr);
  GenerationParams gp = greedy(50);
  gp.sampling.temperature = 0.9f;
  gp.sampling.seed = 7;
  std::string joined;
  GenerationResult r = s.generate(encode(kPrompt), gp, [&](const std::string& c) {
    joined += c;
    return true;
  });
  EXPECT_EQ(joined, r.text);
  // ... and is reproducible for a seed.
  Session s2(*model_, nullptr);
  EXPECT_EQ(s2.generate(encode(kPrompt), gp).text, r.text);
}

TEST_F(SessionTest, LogprobsComeOnePerTokenBeforeTheirText) {
  Session s(*model_, nullptr);
  GenerationParams gp = greedy(20);
  gp.logprobs = 3;
  size_t seen = 0;       // on_logprobs calls so far
  bool in_order = true;  // every chunk of text comes after its tokens' log-probabilities
  std::vector<TokenLogprob> streamed;
  gp.on_logprobs = [&](const TokenLogprob& t) {
    streamed.push_back(t);
    ++seen;
  };
  std::string joined;
  GenerationResult r = s.generate(encode(kPrompt), gp, [&](const std::string& c) {
    in_order = in_order && seen > 0;
    joined += c;
    return true;
  });
  EXPECT_TRUE(in_order);
  ASSERT_EQ(r.logprobs.size(), r.tokens.size());
  ASSERT_EQ(streamed.size(), r.tokens.size());
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    const TokenLogprob& t = r.logprobs[i];
    EXPECT_EQ(t.token, r.tokens[i]);
    EXPECT_EQ(streamed[i].token, r.tokens[i]);
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_EQ(t.top[0].first, t.token) << "greedy picks the most likely token";
    EXPECT_FLOAT_EQ(t.top[0].second, t.logprob);
    EXPECT_LE(t.logprob, 0.0f);
    EXPECT_GE(t.top[0].second, t.top[1].second);
    EXPECT_GE(t.top[1].second, t.top[2].second);
  }
  // Without logprobs nothing is computed; banning the first greedy token changes the start.
  Session s2(*model_, nullptr);
  GenerationParams plain = greedy(20);
  plain.sampling.logit_bias = {{r.tokens[0], -100.0f}};
  GenerationResult banned = s2.generate(encode(kPrompt), plain);
  EXPECT_TRUE(banned.logprobs.empty());
  ASSERT_FALSE(banned.tokens.empty());
  EXPECT_NE(banned.tokens[0], r.tokens[0]);
  EXPECT_EQ(banned.tokens[0], r.logprobs[0].top[1].first) << "the next most likely token";
}

TEST_F(SessionTest, CallbackReturningFalseStops) {
  Session s(*model_, nullptr);
  int calls = 0;
  GenerationResult r = s.generate(encode(kPrompt), greedy(60), [&](const std::string&) {
    return ++calls < 3;
  });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_LT(r.tokens.size(), 60u);
}

TEST_F(SessionTest, GenerationContinuesTheTextWithItsSpaces) {
  // "Once upon a time there" continues with " was": the first generated piece's leading space
  // is real text (it is not the space SentencePiece adds at the start of an input).
  Session s(*model_, nullptr);
  GenerationParams gp = greedy(8);
  const std::vector<int32_t> prompt = encode("Once upon a time, there");
  GenerationResult r = s.generate(prompt, gp);
  ASSERT_FALSE(r.tokens.empty());
  const std::string first_piece = model_->require_tokenizer().token_to_piece(r.tokens[0]);
  if (!first_piece.empty() && first_piece[0] == ' ') {
    EXPECT_EQ(r.text.substr(0, 1), " ") << "got '" << r.text << "'";
  }
  // Prompt + output reads as the decoded whole sequence.
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), r.tokens.begin(), r.tokens.end());
  EXPECT_EQ("Once upon a time, there" + r.text, model_->require_tokenizer().decode(all));
}

// The rule itself (runtime/context.h) is tested in test_context.cpp.
TEST_F(SessionTest, GenerateChecksThePromptFitsTheContext) {
  Session s(*model_, nullptr);
  GenerationParams gp = greedy(4);
  gp.ctx_size = 3;
  EXPECT_THROW(s.generate(encode(kPrompt), gp), Error);
}

TEST_F(SessionTest, GenerationStopsWhenTheContextIsFull) {
  const std::vector<int32_t> prompt = encode(kPrompt);
  Session s(*model_, nullptr);
  GenerationParams gp = greedy(50);
  gp.ctx_size = static_cast<int>(prompt.size()) + 4;
  GenerationResult r = s.generate(prompt, gp);
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_LT(r.tokens.size(), 50u);
  EXPECT_GE(r.tokens.size(), 1u);
  EXPECT_LE(s.next_position(), gp.ctx_size);  // never ran a token past the context
}

// stories260K with `eos_token_id` pointing at the "." token, written to a temporary file: greedy
// generation from kPrompt then ends at the first sentence.
std::string write_stories_with_eos(const std::string& eos_text, int32_t* eos_id) {
  const gguf::File src = gguf::File::open(stories_path());
  const auto tok = Tokenizer::from_gguf(src);
  *eos_id = tok->find_token(eos_text);
  gguf::Writer w;
  for (const auto& [k, v] : src.metadata()) w.set(k, v);
  w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*eos_id));
  for (const gguf::TensorInfo& t : src.tensors()) {
    w.add_raw(t.name, t.type, t.ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  const std::string path = test::temp_dir() + "/stories-eos.gguf";
  w.write(path);
  return path;
}

TEST_F(SessionTest, EosStopsWithFinishReasonStop) {
  int32_t eos = -1;
  const std::string path = write_stories_with_eos(".", &eos);
  ASSERT_GE(eos, 0) << "stories260K has no '.' token";
  auto m = Model::load(path);
  ASSERT_TRUE(m->require_tokenizer().is_end_of_generation(eos));
  Session s(*m, nullptr);
  GenerationParams gp = greedy(60);
  std::string streamed;
  GenerationResult r = s.generate(encode(kPrompt), gp, [&](const std::string& c) {
    streamed += c;
    return true;
  });
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.text, ", there was a little girl named Lily");  // EOS itself is not output
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(std::count(r.tokens.begin(), r.tokens.end(), eos), 0);

  // stop_at_eog = false (--ignore-eos) runs on to max_tokens.
  Session s2(*m, nullptr);
  gp.stop_at_eog = false;
  gp.max_tokens = 20;
  GenerationResult r2 = s2.generate(encode(kPrompt), gp);
  EXPECT_EQ(r2.finish_reason, "length");
  EXPECT_EQ(r2.tokens.size(), 20u);
  EXPECT_EQ(r2.text.rfind(", there was a little girl named Lily.", 0), 0u) << r2.text;
  fs::remove_all(fs::path(path).parent_path());
}


// first_logits: the prefill's last-token logits, only when asked for; asking changes nothing
// else.
TEST_F(SessionTest, FirstLogitsOnlyWhenAskedAndEqualToThePrefills) {
  const std::vector<int32_t> prompt = encode(kPrompt);
  Session plain(*model_, nullptr);
  GenerationResult a = plain.generate(prompt, greedy(6));
  EXPECT_TRUE(a.first_logits.empty());
  Session asked(*model_, nullptr);
  GenerationParams gp = greedy(6);
  gp.keep_first_logits = true;
  GenerationResult b = asked.generate(prompt, gp);
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_EQ(b.text, a.text);
  Session ref(*model_, nullptr);
  const std::vector<float> want = ref.prefill(prompt);
  EXPECT_EQ(b.first_logits, want);
  ASSERT_EQ(b.first_logits.size(), static_cast<size_t>(model_->config().n_vocab));
  // Greedy: the first generated token is the argmax.
  EXPECT_EQ(b.tokens[0], std::max_element(want.begin(), want.end()) - want.begin());
}

// PrefillStats::propagations records each shrink of the live set with original positions.
TEST_F(SessionTest, PropagationsRecordWhereTheLiveSetShrank) {
  std::vector<int32_t> prompt;
  for (int i = 0; i < 12; ++i) {
    for (int32_t t : encode(" Once upon a time there was a little girl named Lily.")) {
      if (t != 1) prompt.push_back(t);
    }
  }
  prompt.insert(prompt.begin(), 1);
  const int N = static_cast<int>(prompt.size());
  const int L = model_->config().n_layer;
  auto make = [&](const std::string& m) { return MethodRegistry::instance().create(m, {}, L); };

  Session full(*model_, make("full"));
  full.prefill(prompt);
  EXPECT_TRUE(full.last_prefill().propagations.empty());

  Session fk(*model_, make("fastkv"));
  fk.prefill(prompt);
  const PrefillStats& st = fk.last_prefill();
  ASSERT_EQ(st.propagations.size(), 1u);
  const PrefillStats::Propagation& p = st.propagations[0];
  EXPECT_EQ(p.layer, std::max(0, L / 2 - 1));  // the default TSP layer
  EXPECT_FALSE(p.restart);
  EXPECT_EQ(p.positions, st.final_positions);
  EXPECT_EQ(static_cast<int>(p.positions.size()), st.propagated);
  EXPECT_EQ(st.propagated, static_cast<int>(N * 0.2));
  EXPECT_TRUE(std::is_sorted(p.positions.begin(), p.positions.end()));
  EXPECT_EQ(p.positions.back(), N - 1);

  Session gf(*model_, make("gemfilter"));
  gf.prefill(prompt);
  const PrefillStats& gs = gf.last_prefill();
  ASSERT_EQ(gs.passes, 2);
  ASSERT_EQ(gs.propagations.size(), 1u);
  EXPECT_TRUE(gs.propagations[0].restart);
  EXPECT_EQ(gs.propagations[0].pass, 0);
  // The restarted pass runs on exactly those tokens, renumbered 0..T-1.
  EXPECT_EQ(static_cast<int64_t>(gs.propagations[0].positions.size()), gs.next_position);
  EXPECT_TRUE(std::is_sorted(gs.propagations[0].positions.begin(),
                             gs.propagations[0].positions.end()));
  EXPECT_LT(gs.propagations[0].positions.back(), N);
}

// Generations stepped together (runtime/generation.h driven by Session::decode_batch, as the
// server's engine does) give what Session::generate gives each alone, on the quant backend
// where a batched row is computed exactly as a lone one: same tokens, text, streamed chunks,
// finish reasons and log-probabilities, greedy and sampled (each has its own sampler), with
// stop strings, max_tokens and end of generation ending them at different steps.
TEST(GenerationTest, SteppedTogetherEqualsGenerateAloneOnTheQuantPath) {
  const std::string smol = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (smol.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found (FASTKV_MODEL_PATH)";
  LoadOptions lo;
  lo.backend = kernels::Backend::kQuant;  // what --backend auto picks for this file
  auto m = Model::load(smol, lo);
  const Tokenizer& tok = m->require_tokenizer();
  struct Case {
    std::string prompt;
    GenerationParams gp;
    std::string method;
    MethodOptions opts;
  };
  std::vector<Case> cases(4);
  cases[0].prompt = "The capital of France is";
  cases[0].gp.max_tokens = 30;
  cases[1].prompt = "Write a list of fruits:\n1.";
  cases[1].gp.max_tokens = 40;
  cases[1].gp.stop = {"4."};
  cases[1].gp.logprobs = 3;
  cases[2].prompt = "Once upon a time, in a small village by the sea, there lived";
  cases[2].gp.max_tokens = 25;
  cases[2].gp.sampling.temperature = 0.8f;
  cases[2].gp.sampling.seed = 7;
  cases[2].method = "snapkv";
  cases[2].opts = {{"kv_budget", "8"}};
  cases[3].prompt = "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n";
  cases[3].gp.max_tokens = 60;  // ends at the end-of-turn token
  struct Out {
    GenerationResult r;
    std::vector<std::string> chunks;
  };
  auto policy = [&](const Case& c) {
    return c.method.empty() ? nullptr
                            : MethodRegistry::instance().create(c.method, c.opts, m->config().n_layer);
  };
  std::vector<Out> alone(cases.size()), together(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    Session s(*m, policy(cases[i]));
    alone[i].r = s.generate(tok.encode(cases[i].prompt, true, true), cases[i].gp,
                            [&, i](const std::string& t) {
                              alone[i].chunks.push_back(t);
                              return true;
                            });
  }
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Generation>> gens;
  for (size_t i = 0; i < cases.size(); ++i) {
    sessions.push_back(std::make_unique<Session>(*m, policy(cases[i])));
    gens.push_back(std::make_unique<Generation>(
        *sessions[i], tok.encode(cases[i].prompt, true, true), cases[i].gp,
        [&, i](const std::string& t) {
          together[i].chunks.push_back(t);
          return true;
        }));
    gens[i]->prefill();
  }
  int max_batch = 0;
  for (;;) {
    std::vector<Session*> ss;
    std::vector<int32_t> tokens;
    std::vector<size_t> which;
    for (size_t i = 0; i < cases.size(); ++i) {
      if (gens[i]->done()) continue;
      ss.push_back(sessions[i].get());
      tokens.push_back(gens[i]->pending_token());
      which.push_back(i);
    }
    if (ss.empty()) break;
    max_batch = std::max(max_batch, static_cast<int>(ss.size()));
    Session::decode_batch(ss, tokens);
    for (size_t i : which) gens[i]->accept_decoded();
  }
  EXPECT_EQ(max_batch, 4);
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    together[i].r = gens[i]->finish();
    const GenerationResult &a = alone[i].r, &b = together[i].r;
    EXPECT_FALSE(a.tokens.empty());
    EXPECT_EQ(b.tokens, a.tokens);
    EXPECT_EQ(b.text, a.text);
    EXPECT_EQ(b.finish_reason, a.finish_reason);
    EXPECT_EQ(b.n_decode_steps, a.n_decode_steps);
    EXPECT_EQ(together[i].chunks, alone[i].chunks);
    ASSERT_EQ(b.logprobs.size(), a.logprobs.size());
    for (size_t t = 0; t < a.logprobs.size(); ++t) {
      EXPECT_EQ(b.logprobs[t].logprob, a.logprobs[t].logprob);
      EXPECT_EQ(b.logprobs[t].top, a.logprobs[t].top);
    }
    EXPECT_EQ(b.kv_bytes, a.kv_bytes);
  }
  // The cases end differently: a stop string, the end of a turn, max_tokens.
  EXPECT_EQ(alone[1].r.finish_reason, "stop");
  EXPECT_EQ(alone[3].r.finish_reason, "stop");
  EXPECT_EQ(alone[0].r.finish_reason, "length");
}

TEST_F(SessionTest, GenerationStepsOutOfOrderAreErrors) {
  Session s(*model_, nullptr);
  Generation g(s, encode(kPrompt), greedy(2));
  EXPECT_THROW(g.accept_decoded(), Error);  // nothing prefilled
  g.prefill();
  EXPECT_THROW(g.prefill(), Error);
  s.decode(g.pending_token());
  g.accept_decoded();
  ASSERT_TRUE(g.done());
  EXPECT_THROW(g.accept_decoded(), Error);  // max_tokens reached
  EXPECT_EQ(g.finish().tokens.size(), 2u);
  EXPECT_THROW(g.finish(), Error);
  GenerationParams bad = greedy(-1);
  EXPECT_THROW(Generation(s, encode(kPrompt), bad), Error);
  Session other(*model_, nullptr);
  s.prefill(encode(kPrompt));
  EXPECT_THROW(Session::decode_batch({&s, &other}, {1}), Error);  // one token for two sessions
  EXPECT_THROW(Session::decode_batch({}, {}), Error);
}

}  // namespace
}  // namespace fastkv
